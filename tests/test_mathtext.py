"""TeX → Unicode text: a golden list of formulas from the bundled bank, then the rules one by one.

Every expected text below was read by eye against the formula it comes from.
"""

from __future__ import annotations

import pytest

from bot.core.mathtext import to_unicode
from bot.core.render import formulas, to_discord, to_plain, to_telegram_html

# (TeX as the bank writes it, the text a reader sees). Among them: scaled dot-product attention,
# PPO's clipped objective, GRPO's advantage, KL divergence, `cases` blocks and sums with limits.
GOLDEN = [
    (
        "\\text{Attention}(Q,K,V) = \\text{softmax}\\!\\left(\\frac{QK^T}{\\sqrt{d_k}}\\right)V",
        "Attention(Q,K,V) = softmax(QKᵀ/√dₖ)V",
    ),
    ("Q,K,V \\in \\mathbb{R}^{n \\times d}", "Q,K,V ∈ ℝ^(n × d)"),
    ("\\sqrt[3]{d_k}", "∛dₖ"),
    ("O(n \\times d \\times n) = O(n^2 d)", "O(n × d × n) = O(n² d)"),
    ("\\text{score}(Q,K) = \\frac{QK^\\top}{\\sqrt{d_k}}", "score(Q,K) = QKᵀ/√dₖ"),
    ("\\alpha = \\text{softmax}\\big(\\text{score}(Q,K)\\big)", "α = softmax(score(Q,K))"),
    (
        "\\text{MHA}(Q, K, V) = \\text{Concat}(\\text{head}_1, \\ldots, \\text{head}_h)W^O",
        "MHA(Q, K, V) = Concat(head₁, …, headₕ)Wᴼ",
    ),
    (
        "\\text{head}_h = \\text{Softmax}\\left(\\frac{Q_h K_h^\\top}{\\sqrt{d_k}}\\right)V_h",
        "headₕ = Softmax(Qₕ Kₕᵀ/√dₖ)Vₕ",
    ),
    ("d_k=\\frac{d_{\\text{model}}}{h}", "dₖ=d_model/h"),
    (
        "\\text{head}_i=\\mathrm{softmax}\\!\\left(\\frac{Q_i K_i^\\top}{\\sqrt{d_k}}\\right) V_i,\\qquad Q_i,K_i,V_i\\in\\mathbb{R}^{B\\times T\\times d_k}",
        "headᵢ=softmax(Qᵢ Kᵢᵀ/√dₖ) Vᵢ, Qᵢ,Kᵢ,Vᵢ ∈ ℝ^(B × T × dₖ)",
    ),
    (
        "M_{ij}=\n\\begin{cases}\n0,& j\\le i\\\\\n-\\infty,& j>i\n\\end{cases}",
        "Mᵢⱼ=\n\u20030,\u2003j ≤ i\n\u2003-∞,\u2003j>i",
    ),
    (
        "L = - \\sum_t \\sum_i q(y_t=i)\\,\\log p_\\theta(y_t=i \\mid y_{<t})",
        "L = - ∑ₜ ∑ᵢ q(yₜ=i) log p_θ(yₜ=i | y_(<t))",
    ),
    (
        "D_{KL}(q \\parallel p) = \\sum_i q(i)\\,\\log \\frac{q(i)}{p(i)}",
        "D_KL(q ‖ p) = ∑ᵢ q(i) log(q(i)/p(i))",
    ),
    (
        "q'(i) =\n\\begin{cases}\n1-\\epsilon & i = y_t^{\\text{true}} \\\\\n\\frac{\\epsilon}{V-1} & i \\neq y_t^{\\text{true}}\n\\end{cases}",
        "q'(i) =\n\u20031-ϵ\u2003i = yₜᵗʳᵘᵉ\n\u2003ϵ/(V-1)\u2003i ≠ yₜᵗʳᵘᵉ",
    ),
    (
        "L = -\\log \\frac{\\exp(\\text{sim}(q,k^+)/\\tau)}{\\sum_{i=1}^N \\exp(\\text{sim}(q,k_i)/\\tau)}",
        "L = -log(exp(sim(q,k⁺)/τ)/(∑ᵢ₌₁ᴺ exp(sim(q,kᵢ)/τ)))",
    ),
    ("L = - \\sum_{i=1}^C y_i \\log \\hat{y}_i", "L = - ∑ᵢ₌₁^C yᵢ log ŷᵢ"),
    (
        "\\hat{y}_i = \\frac{\\exp(z_i - \\max_k z_k)}{\\sum_{j=1}^C \\exp(z_j - \\max_k z_k)}",
        "ŷᵢ = exp(zᵢ - maxₖ zₖ)/(∑ⱼ₌₁^C exp(zⱼ - maxₖ zₖ))",
    ),
    (
        "L = -\\frac{1}{T}\\sum_{t=1}^T \\log P_\\theta(x_t \\mid x_{<t})",
        "L = -1/T ∑ₜ₌₁ᵀ log P_θ(xₜ | x_(<t))",
    ),
    ("D_{KL}(P \\| Q) = \\sum_x P(x) \\log \\frac{P(x)}{Q(x)}", "D_KL(P ‖ Q) = ∑ₓ P(x) log(P(x)/Q(x))"),
    (
        "\\text{LN}(x) = \\frac{x - \\mu}{\\sqrt{\\sigma^2 + \\epsilon}} \\cdot \\gamma + \\beta",
        "LN(x) = (x - μ)/√(σ² + ϵ) · γ + β",
    ),
    (
        "\\text{RMSNorm}(x) = \\frac{x}{\\sqrt{\\frac{1}{n}\\sum_{i=1}^n x_i^2 + \\epsilon}} \\cdot \\gamma",
        "RMSNorm(x) = x/√(1/n ∑ᵢ₌₁ⁿ xᵢ² + ϵ) · γ",
    ),
    ("\\mu = \\frac{1}{n}\\sum_{i=1}^n x_i", "μ = 1/n ∑ᵢ₌₁ⁿ xᵢ"),
    (
        "\\text{value} = (-1)^{sign} \\times 2^{exponent-bias} \\times (1 + fraction)",
        "value = (-1)ˢⁱᵍⁿ × 2ᵉˣᵖᵒⁿᵉⁿᵗ⁻ᵇⁱᵃˢ × (1 + fraction)",
    ),
    ("\\text{范围} \\approx 2^{\\pm (2^{n-1})}", "范围 ≈ 2^(± (2ⁿ⁻¹))"),
    ("2^{-10} \\approx 10^{-3}", "2⁻¹⁰ ≈ 10⁻³"),
    (
        "PE_{(pos,2i)} = \\sin\\left(\\frac{pos}{10000^{2i/d}}\\right),\\quad\nPE_{(pos,2i+1)} = \\cos\\left(\\frac{pos}{10000^{2i/d}}\\right)",
        "PE_((pos,2i)) = sin(pos/10000^(2i/d)), PE_((pos,2i+1)) = cos(pos/10000^(2i/d))",
    ),
    ("P(x) = \\prod_{t=1}^T P(x_t \\mid x_{<t})", "P(x) = ∏ₜ₌₁ᵀ P(xₜ | x_(<t))"),
    (
        "P(x) = \\prod_{t=m+1}^T P(x_t \\mid x_{\\leq m}, x_{m+1:t-1})",
        "P(x) = ∏ₜ₌ₘ₊₁ᵀ P(xₜ | x_(≤ m), x_(m+1:t-1))",
    ),
    (
        "\\mathcal{L}_{\\text{pretrain}} = - \\sum_{t} \\log P_\\theta(x_t \\mid x_{<t})",
        "ℒₚᵣₑₜᵣₐᵢₙ = - ∑ₜ log P_θ(xₜ | x_(<t))",
    ),
    ("W' = W + \\Delta W,\\quad \\Delta W = A B", "W' = W + ΔW, ΔW = A B"),
    ("B = \\alpha A^T", "B = αAᵀ"),
    ("\\mathcal{L} = -\\log \\sigma(r_\\theta(A) - r_\\theta(B))", "ℒ = -log σ(r_θ(A) - r_θ(B))"),
    (
        "\\mathbb{E}_{x\\sim p}[f(x)] = \\mathbb{E}_{x\\sim q}\\!\\left[\\frac{p(x)}{q(x)}f(x)\\right]",
        "𝔼_(x ∼ p)[f(x)] = 𝔼_(x ∼ q)[p(x)/q(x) f(x)]",
    ),
    (
        "r_t(\\theta) = \\frac{\\pi_\\theta(a_t|s_t)}{\\pi_{\\text{old}}(a_t|s_t)}",
        "rₜ(θ) = π_θ(aₜ|sₜ)/π_old(aₜ|sₜ)",
    ),
    (
        "L_{\\text{PPO}}(\\theta) = \\mathbb{E}_t\\!\\big[\n\\min\\big(\nr_t(\\theta)A_t,\\;\n\\mathrm{clip}(r_t(\\theta),1-\\epsilon,1+\\epsilon)A_t\n\\big)\n\\big]",
        "L_PPO(θ) = 𝔼ₜ[min(rₜ(θ)Aₜ, clip(rₜ(θ),1-ϵ,1+ϵ)Aₜ)]",
    ),
    (
        "\\mathcal{L}_{\\text{RM}} = - \\mathbb{E}_{(x, y^+, y^-)}\n\\big[\\log \\sigma\\big(r_\\phi(x, y^+) - r_\\phi(x, y^-)\\big)\\big]",
        "ℒ_RM = - 𝔼_((x, y⁺, y⁻)) [log σ(r_ϕ(x, y⁺) - r_ϕ(x, y⁻))]",
    ),
    (
        "\\max_{\\theta}\\ \\mathbb{E}_{x,y\\sim \\pi_\\theta}\n\\big[r_\\phi(x,y)\\big]\\ -\\ \\beta\\, \\mathrm{KL}\\!\\left(\\pi_\\theta(\\cdot|x)\\ \\Vert\\ \\pi_{\\text{ref}}(\\cdot|x)\\right)",
        "max_θ 𝔼_(x,y ∼ π_θ) [r_ϕ(x,y)] - β KL(π_θ(· |x) ‖ π_ref(· |x))",
    ),
    (
        "L^{\\text{clip}}(\\theta) =\n\\mathbb{E}_t \\left[\n\\min \\Bigg(\nr_t(\\theta) A_t,\\;\n\\operatorname{clip}\\big(r_t(\\theta), 1-\\epsilon, 1+\\epsilon \\big) A_t\n\\Bigg)\n\\right]",
        "Lᶜˡⁱᵖ(θ) = 𝔼ₜ [min(rₜ(θ) Aₜ, clip(rₜ(θ), 1-ϵ, 1+ϵ) Aₜ)]",
    ),
    (
        "r_t(\\theta) = \\frac{\\pi_\\theta(a_t|s_t)}{\\pi_{\\theta_{\\text{old}}}(a_t|s_t)}",
        "rₜ(θ) = π_θ(aₜ|sₜ)/π_(θ_old)(aₜ|sₜ)",
    ),
    ("L_V(\\gamma) = \\big(V_\\theta(s_t) - \\hat{R}_t\\big)^2", "L_V(γ) = (V_θ(sₜ) - R̂ₜ)²"),
    (
        "\\hat{A}_t^{\\text{GAE}(\\gamma, \\lambda)} =\n\\sum_{l=0}^\\infty (\\gamma \\lambda)^l \\,\\delta_{t+l}",
        "Âₜ^(GAE(γ, λ)) = ∑ₗ₌₀^∞ (γ λ)ˡ δₜ₊ₗ",
    ),
    (
        "D_{\\mathrm{KL}}(P\\|Q)\n= \\sum_{x} P(x)\\,\\log\\frac{P(x)}{Q(x)}.",
        "D_KL(P ‖ Q) = ∑ₓ P(x) log(P(x)/Q(x)).",
    ),
    (
        "D_{\\mathrm{KL}}(P\\|Q)\n= \\int P(x)\\,\\log\\frac{P(x)}{Q(x)}\\,\\mathrm{d}x.",
        "D_KL(P ‖ Q) = ∫P(x) log(P(x)/Q(x)) dx.",
    ),
    (
        "L^{CLIP}(\\theta) = \\mathbb{E}_t \\Big[ \\min\\big( r_t(\\theta) A_t, \\ \\text{clip}(r_t(\\theta), 1-\\epsilon, 1+\\epsilon) A_t \\big) \\Big]",
        "L^CLIP(θ) = 𝔼ₜ [min(rₜ(θ) Aₜ, clip(rₜ(θ), 1-ϵ, 1+ϵ) Aₜ)]",
    ),
    (
        "\nA_i = \\frac{R_\\phi(r_i) - \\mathrm{mean}(G)}{\\mathrm{std}(G)}\\,,\n",
        "Aᵢ = (R_ϕ(rᵢ) - mean(G))/std(G),",
    ),
    (
        "\nL_{\\text{clip}}(\\theta) = \\frac{1}{N}\\sum_{i=1}^{N}\n\\min\\!\\left(\n\\frac{\\pi_\\theta(r_i\\mid p)}{\\pi_{\\theta_{\\text{old}}}(r_i\\mid p)}A_i,\\;\n\\operatorname{clip}\\!\\left(\n\\frac{\\pi_\\theta(r_i\\mid p)}{\\pi_{\\theta_{\\text{old}}}(r_i\\mid p)},\n1-\\varepsilon,\\,1+\\varepsilon\n\\right)A_i\n\\right).\n",
        "L_clip(θ) = 1/N ∑ᵢ₌₁ᴺ min(π_θ(rᵢ | p)/π_(θ_old)(rᵢ | p) Aᵢ, clip(π_θ(rᵢ | p)/π_(θ_old)(rᵢ | p), 1-ε, 1+ε)Aᵢ).",
    ),
    (
        "\nL_{\\text{GRPO}}(\\theta)=L_{\\text{clip}}(\\theta)-w_1\\, D_{\\mathrm{KL}}\\!\\big(\\pi_\\theta \\,\\|\\, \\pi_{\\mathrm{orig}}\\big).\n",
        "L_GRPO(θ)=L_clip(θ)-w₁ D_KL(π_θ ‖ π_orig).",
    ),
    (
        "r_{i,t}(\\theta)=\\dfrac{\\pi_\\theta(o_{i,t}\\mid q)}{\\pi_{\\theta_{\\text{old}}}(o_{i,t}\\mid q)}",
        "r_(i,t)(θ)=π_θ(o_(i,t) | q)/π_(θ_old)(o_(i,t) | q)",
    ),
    (
        "s_i(\\theta) = \\left( \\frac{\\pi_{\\theta}(y_i | x)}{\\pi_{\\theta_{\\text{old}}}(y_i | x)} \\right)^{\\tfrac{1}{|y_i|}}\n= \\exp\\left(\\frac{1}{|y_i|} \\sum_{t=1}^{|y_i|} \\log \\frac{\\pi_{\\theta}(y_{i,t}|\\,x,y_{i,<t})}{\\pi_{\\theta_{\\text{old}}}(y_{i,t}|x,y_{i,<t})}\\right)",
        "sᵢ(θ) = (π_θ(yᵢ | x)/π_(θ_old)(yᵢ | x))^(1/|yᵢ|) = exp(1/|yᵢ| ∑ₜ₌₁^(|yᵢ|) log(π_θ(y_(i,t)| x,y_(i,<t))/π_(θ_old)(y_(i,t)|x,y_(i,<t))))",
    ),
    (
        "c^{KV}_t = \\text{Linear}_{\\text{down}}(h_t);\\quad\nK_t = \\text{Linear}_{\\text{up\\,to\\,K}}(c^{KV}_t);\\quad\nV_t = \\text{Linear}_{\\text{up\\,to\\,V}}(c^{KV}_t)",
        "cᴷⱽₜ = Linear_down(hₜ); Kₜ = Linear_(up to K)(cᴷⱽₜ); Vₜ = Linear_(up to V)(cᴷⱽₜ)",
    ),
    (
        "\\mathcal{L}_{\\text{MTP}}=\\sum_{j=1}^{k} w_j \\cdot \\mathrm{CE}\\!\\big(\\hat{y}_{t+j},\\, y_{t+j}\\big)",
        "ℒ_MTP=∑ⱼ₌₁ᵏ wⱼ · CE(ŷₜ₊ⱼ, yₜ₊ⱼ)",
    ),
    (
        "\n\\text{PerLayer} \\;\\approx\\;\n\\underbrace{4\\,d_{\\text{model}}^2}_{\\text{MHA: }Q,K,V,O}\n\\;+\\;\n\\underbrace{3\\,d_{\\text{model}}\\,d_{\\text{ff}}}_{\\text{SwiGLU: 两路上投+一路下投}}\n\\;+\\;\n\\underbrace{2\\,d_{\\text{model}}}_{\\text{两处RMSNorm}}\n",
        "PerLayer ≈ 4 d_model² [MHA: Q,K,V,O] + 3 d_model d_ff [SwiGLU: 两路上投+一路下投] + 2 d_model [两处RMSNorm]",
    ),
    (
        "\n\\text{Attn}_{\\text{GQA}}\n=\\underbrace{d_{\\text{model}}^2}_{Q}\n+\\underbrace{d_{\\text{model}}\\,(n_{kv}\\cdot d_k)}_{K}\n+\\underbrace{d_{\\text{model}}\\,(n_{kv}\\cdot d_k)}_{V}\n+\\underbrace{d_{\\text{model}}^2}_{O}\n=2\\,d_{\\text{model}}^2+2\\,d_{\\text{model}}(n_{kv}\\cdot d_k).\n",
        "Attn_GQA =d_model² [Q] +d_model (nₖᵥ · dₖ) [K] +d_model (nₖᵥ · dₖ) [V] +d_model² [O] =2 d_model²+2 d_model(nₖᵥ · dₖ).",
    ),
    (
        "y^*=\\arg\\max_y\\ \\text{Support}(y,\\mathcal{C})-\\lambda\\cdot\\text{Contradict}(y,\\mathcal{C})",
        "y*=arg max_y Support(y,𝒞)-λ · Contradict(y,𝒞)",
    ),
    (
        "PE_{(pos,2i)}=\\sin(\\frac{pos}{10000^{2i/d}}), \\quad\nPE_{(pos,2i+1)}=\\cos(\\frac{pos}{10000^{2i/d}})",
        "PE_((pos,2i))=sin(pos/10000^(2i/d)), PE_((pos,2i+1))=cos(pos/10000^(2i/d))",
    ),
]


def test_golden_formulas_from_the_bundled_bank() -> None:
    assert len(GOLDEN) >= 40
    mismatches = [
        (source, to_unicode(source), expected)
        for source, expected in GOLDEN
        if to_unicode(source) != expected
    ]
    assert mismatches == []


def test_every_golden_formula_is_in_the_bundled_bank() -> None:
    from bot.config import BUNDLED_CONTENT
    from bot.core.render import _math_body

    bank = set()
    for file in BUNDLED_CONTENT.rglob("*.md"):
        for formula in formulas(file.read_text(encoding="utf-8-sig")):
            bank.add(formula.source)
            bank.add(_math_body(formula.source)[1])
    assert [source for source, _ in GOLDEN if source not in bank] == []


@pytest.mark.parametrize(
    ("tex", "text"),
    [
        ("x^2 + a_t", "x² + aₜ"),  # every character has a script form
        ("x_{t+1} + x^{n-1}", "xₜ₊₁ + xⁿ⁻¹"),
        ("x_{q,b}", "x_(q,b)"),  # q and b have no subscript form: the whole script in parentheses
        ("y^{QK}", "y^QK"),  # one word: no parentheses needed
        ("QK^\\top", "QKᵀ"),
        ("\\frac{a+b}{c d}", "(a+b)/(c d)"),
        ("\\frac12", "1/2"),
        ("\\sqrt{x}\\,\\sqrt{x+1}", "√x √(x+1)"),
        ("\\sqrt[4]{x}", "∜x"),
        ("\\text{loss} = \\operatorname{KL}(p\\|q)", "loss = KL(p ‖ q)"),
        ("\\mathbb{E}[X] \\in \\mathbb{R}", "𝔼[X] ∈ ℝ"),
        ("\\mathcal{L}, \\mathcal{D}", "ℒ, 𝒟"),
        ("\\hat{x} + \\bar{y} + \\tilde{z}", "x\u0302 + y\u0304 + z\u0303"),
        ("\\left( \\frac{a}{b} \\right)", "(a/b)"),
        ("\\left. x \\right|_{0}", "x |₀"),
        ("\\log \\frac{p}{q}", "log(p/q)"),
        ("\\begin{aligned} a &= b \\\\ c &= d \\end{aligned}", "a\u2003= b\nc\u2003= d"),
        ("\\{1, 2\\}", "{1, 2}"),
    ],
)
def test_rules(tex: str, text: str) -> None:
    assert to_unicode(tex) == text


@pytest.mark.parametrize(
    "tex",
    ["\\frac{a}{b", "a}", "\\unknownmacro{x}", "\\begin{tikzpicture}x\\end{tikzpicture}", "\\sqrt[5]{x}",
     "\\mathbb{xy+1}", "a & b", "\\frac{a}", "$x$", ""],
)  # fmt: skip
def test_anything_not_fully_convertible_is_none(tex: str) -> None:
    assert to_unicode(tex) is None


def test_inline_math_is_text_in_the_sentence_on_every_target() -> None:
    md = "注意力 $\\frac{QK^T}{\\sqrt{d_k}}$ 与 \\(\\pi_\\theta\\) 相关"
    assert to_telegram_html(md) == ["注意力 QKᵀ/√dₖ 与 π_θ 相关"]
    assert to_discord(md) == ["注意力 QKᵀ/√dₖ 与 π\\_θ 相关"]
    assert to_plain(md) == "注意力 QKᵀ/√dₖ 与 π_θ 相关"


def test_display_math_is_set_apart_in_monospace() -> None:
    for md in ("$$\nx^2\n$$", "\\[\nx^2\n\\]", "```math\nx^2\n```", "```latex\nx^2\n```", "```tex\nx^2\n```"):
        assert to_telegram_html(md) == ["<pre>x²</pre>"], md
        assert to_discord(md) == ["```\nx²\n```"], md
        assert to_plain(md) == "  x²", md
    inside = "前文 $$\\sum_i x_i$$ 后文"  # display math inside a paragraph: a line of its own
    assert to_telegram_html(inside) == ["前文\n<code>∑ᵢ xᵢ</code>\n后文"]
    assert to_plain(inside) == "前文\n∑ᵢ xᵢ\n后文"


def test_an_unconvertible_formula_is_its_source_in_monospace() -> None:
    assert to_telegram_html("a $\\foo{x}$ b") == ["a <code>$\\foo{x}$</code> b"]
    assert to_discord("a $\\foo{x}$ b") == ["a `$\\foo{x}$` b"]
    assert to_telegram_html("$$\n\\foo{x}\n$$") == ['<pre><code class="language-tex">\\foo{x}</code></pre>']
    assert to_telegram_html("```latex\n\\documentclass{article}\n```") == [
        '<pre><code class="language-tex">\\documentclass{article}</code></pre>'
    ]


def test_formulas_are_listed_with_their_lines() -> None:
    md = "# t\n\ntext $a^2$ and\nmore $\\foo$\n\n$$\nb_1\n$$\n"
    assert [(f.line, f.source, f.text) for f in formulas(md)] == [
        (3, "$a^2$", "a²"),
        (4, "$\\foo$", None),
        (6, "b_1", "b₁"),
    ]
