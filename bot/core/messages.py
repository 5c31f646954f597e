"""Every sentence the bot says, in English and Simplified Chinese: `t(lang, key, **values)`.

Messages are markdown. Values that come from users or from the bank's metadata are escaped by the
caller (render.escape) before they are passed in; placeholders are `str.format` fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

LANGUAGES: tuple[str, ...] = ("en", "zh")

CATALOG: dict[str, dict[str, str]] = {
    "en": {
        # --- commands' one-line help (the command table's help keys) and options
        "help_start": "welcome and how it works",
        "help_help": "every command, one line each",
        "help_quiz": "a question now: your due reviews first, then new ones",
        "help_answer": "answer the open question (or the question you reply to)",
        "help_reveal": "summary, Full answer, who answered, grade buttons; id: the number after a title (No. 12)",
        "help_full": "the full reference answer; id: the number after the question's title (No. 12)",
        "help_grade": "grade your answer (again, hard, good or easy) for spaced repetition",
        "help_skip": "another question now (in private, or on your own quiz)",
        "help_stats": "your answers, grades, streaks, due reviews and tags",
        "help_top": "this chat's leaderboard, this week and all time",
        "help_tags": "tags and companies with their question counts",
        "help_subscribe": "a daily question in this chat (admins in groups)",
        "help_unsubscribe": "stop the daily questions (admins in groups)",
        "help_settings": "show the settings, or change one (admins in groups)",
        "help_forgetme": "delete your answers, grades and reviews everywhere",
        "help_reload": "re-read the question bank (bot owners)",
        "owners_only": "Only the bot's owners (DAILYQ_OWNERS) can do that.",
        "reload_done": "Reloaded: {questions} questions ({warnings} warnings; `dailyq check` lists them).",
        "reload_kept": "The bank has errors, so I kept the current one ({questions} questions):",
        "reload_empty": "• no questions could be read",
        "option_filter": "a tag, a company, or words of the title",
        "option_text": "your answer",
        "option_id": "the question's number, shown after its title (No. 12)",
        "option_grade": "again, hard, good or easy",
        "option_time": "HH:MM, e.g. 09:30",
        "option_zone": "an IANA time zone, e.g. Europe/Berlin",
        "option_key": "time, zone, days, reveal, tags, answers, lang, role or paused",
        "option_value": "the new value",
        "option_confirm": "yes, to confirm",
        "help_header": "**Commands**",
        # The placeholders /help shows for the options (the options' own names in English).
        "placeholder_filter": "filter",
        "placeholder_text": "text",
        "placeholder_id": "id",
        "placeholder_grade": "grade",
        "placeholder_time": "time",
        "placeholder_zone": "zone",
        "placeholder_key": "key",
        "placeholder_value": "value",
        "placeholder_confirm": "confirm",
        "list_separator": ", ",
        "list_last": "{names} and {last}",
        "tag_count": "{name} ({count})",
        # --- general
        "welcome": (
            "**Welcome to {bot}!** One interview question a day: answer it, reveal the reference "
            "answer, grade yourself, and spaced repetition brings it back when it is due.\n\n"
            "• /quiz: a question now\n"
            "• Answer by replying to the question (in groups hide it: `||your answer||`) or with "
            "/answer followed by your answer\n"
            "• /reveal: the summary, the full answer and the grade buttons\n"
            "• /subscribe: a daily question in this chat\n"
            "• /stats, /top, /tags, /settings, /help: the rest"
        ),
        "unknown_command": "Unknown command {command}. Try /help for the list.",
        "admins_only": "Only the chat's admins can use {command} here.",
        "private_hint": "Send /quiz for a question, or /help for everything I can do.",
        "question_gone": "That question is no longer in the bank.",
        "bad_post_id": "“{value}” is not a question's number (a whole number, shown after the question's title). Leave it out to mean this chat's current question.",
        "no_such_post": "I have no question with that number. A question's number is shown after the question's title (No. 12).",
        "post_elsewhere": "That question was asked in another chat: answer, reveal or grade it there.",
        # --- questions and answers
        "question_heading": "❓ **{title}** · {number}",
        "post_number": "No. {number}",
        "hint_private": "Type your answer, then /reveal.",
        "hint_group_spoiler": "Reply to this message with your answer hidden as a spoiler (`||your answer||`).",
        "hint_group_thread": "Press Answer, or answer in this question's thread hidden as a spoiler (`||your answer||`).",
        "hint_group_console": "Type your answer hidden as a spoiler (`||your answer||`): a line answers the latest question.",
        "hint_group_private": "Answer privately: press Answer privately, or send me /answer in a private chat.",
        "button_reveal": "Reveal",
        "button_skip": "Skip",
        "button_answer_privately": "Answer privately",
        # --- words only a platform's own widgets show (Telegram private chats, Discord modals and embeds)
        "button_answer": "Answer",
        "button_open_private": "Open private chat",
        "private_blocked": "I can't message you privately yet: open a private chat with me, press Start, then try again.",
        "answer_modal_title": "Your answer",
        "answer_modal_label": "Only you and the bot see it",
        "command_outdated": "I don't know that command: my commands are being updated, so try again in a minute (or type / to see the current ones).",
        "role_not_found": "There is no role named “{name}” here: mention the role (@{name}) or give its id.",
        "role_ambiguous": "Several roles here are named “{name}”: mention the one you mean (@{name}) or give its id.",
        "field_company": "Company",
        "field_round": "Round",
        "field_date": "Date",
        "field_tags": "Tags",
        "console_daily_question": "daily question",
        "console_reveal": "reveal",
        "console_scheduled": "scheduled",
        "console_only_you": "only you see this",
        "console_only_user": "only {name} sees this",
        "console_to": "to {chat}",
        "console_opening": "Type /start to begin, /help for every command; Ctrl-D quits.",
        "console_cast": "You play {cast}: a line `{speaker}: text` speaks as {speaker}.",
        "console_admin": "{name} (admin)",
        "error": "Something went wrong on my side; please try again in a moment.",
        "answer_here": "Send your answer here; it counts for the group's question.",
        "no_match": "No question matches “{filter}”. Try a tag such as: {tags}. /tags lists them all.",
        "skip_where": "/skip works in a private chat or on your own /quiz.",
        "skip_only_one": "This is the only question matching “{filter}”: answer it, or /quiz with another filter.",
        "skip_only_question": "This is the only question in the bank.",
        "answer_usage": "Write your answer after the command: /answer your answer. Or reply to the question.",
        "answer_too_long": "An answer can be up to {limit} characters; yours has {length}. Shorten it and send it again.",
        "nothing_to_answer": "There is no open question here. Send /quiz for one.",
        "answer_unmatched": (
            "I could not tell which question this answers: reply to the question's message, "
            "or send /answer followed by your answer."
        ),
        "answer_saved": "Got your answer to “{title}” ({chars}). /reveal when you are ready.",
        "answers_closed": "The answer to “{title}” is out, so it takes no more answers. Send /quiz for a new question.",
        "answer_kept_revealed": "The answer to “{title}” is out, so your answer stays as it was. Send /quiz for a new question.",
        "answer_kept_graded": "You graded your answer to “{title}”, so it stays as it was. Send /quiz for a new question.",
        "characters_one": "1 character",
        "characters_many": "{count} characters",
        "answer_updated": "Replaced your earlier answer to “{title}” ({chars}); the old one is kept in your history.",
        "spoiler_reminder": "Tip: hide answers in groups so others can think first: `||your answer||`.",
        "private_reminder": "Tip: this group answers privately; send me your answer in a private chat.",
        # --- reveal and grading
        "nothing_to_reveal": "There is no question to reveal here. Send /quiz for one.",
        "reveal_not_yet": "The answer is revealed {when}. Until then only admins can reveal it.",
        "reveal_heading": "💡 **{title}** · {number}",
        "reveal_more": "Full answer: press the button below.",
        "answered_by": "Answered by: {names}",
        "answered_by_nobody": "Nobody has answered yet.",
        "button_full": "Full answer",
        "full_answer_heading": "📖 **{title}** · {number}",
        "grade_again": "Again",
        "grade_hard": "Hard",
        "grade_good": "Good",
        "grade_easy": "Easy",
        "grade_usage": "Grade with /grade again, /grade hard, /grade good or /grade easy (then the question's number, if needed).",
        "nothing_to_grade": "There is no question to grade here.",
        "grade_not_answered": "{name}, you have not answered this question, so there is nothing to grade. Answer it first.",
        "grade_superseded": "You graded this question again later; that later grade is the one that counts.",
        "graded": "Graded: {grade}. Next review: {next}.",
        # --- stats, top, tags
        "stats_heading": "📊 **{name}**",
        "stats_counts": "Answered: {answered} · graded: {graded}",
        "stats_streak": "Days in a row: {current} (best: {best})",
        "stats_due": "Reviews due now: {due}",
        "stats_tags": "By tag: {tags}",
        "top_week": "🏆 **This week**",
        "top_all": "🏆 **All time**",
        "top_line": "{rank}. {name}: answered {answers}, graded {grades}",
        "top_empty": "No answers yet.",
        "tags_heading": "🏷 **{tags} tags** in {questions} questions",
        "tags_none": "The bank has no tags.",
        "tags_more": " … and {count} more (try /quiz with any tag or company)",
        "companies_heading": "🏢 **{companies} companies**",
        # --- subscription and settings
        "subscribe_usage": "Use /subscribe, /subscribe 09:30 or /subscribe 09:30 Europe/Berlin.",
        "subscribed": "Subscribed: a question at {time} ({zone}), days: {days}. The first one comes {first}.",
        "unsubscribed": "Unsubscribed: no more daily questions here. /subscribe starts them again.",
        "not_subscribed": "This chat is not subscribed. /subscribe starts daily questions.",
        "settings_heading": "⚙️ **Settings**",
        "settings_how": "Change one with /settings key value, e.g. /settings time 18:30.",
        "status_subscribed": "Subscribed; the next question comes {when}.",
        "status_paused": "Subscribed, but paused: /settings paused off resumes.",
        "status_not_subscribed": "Not subscribed: /subscribe starts daily questions.",
        "next_post": "The next question comes {when}.",
        "unknown_setting": "There is no setting “{key}”. The settings are: {keys}.",
        "setting_needs_value": "Give {key} a value, e.g. /settings {key} {example}",
        "setting_saved": "Saved: {key} is now {value}.",
        "unknown_tags": "No question has the tag or company “{tags}”. Some tags: {known}.",
        "too_many_tags": "That is {count} tags; the daily questions can be drawn from at most {limit}.",
        "bad_time": "“{value}” is not a time: use HH:MM on a 24-hour clock, e.g. 09:30 or 18:00.",
        "bad_zone": "“{value}” is not a time zone: use an IANA name, e.g. Europe/Berlin, America/New_York or Asia/Shanghai.",
        "bad_days": "“{value}” is not a list of days: use e.g. daily, mon-fri, mon,wed,fri or weekends.",
        "bad_reveal": "“{value}” is not a reveal rule: use a delay (4h, 90m), a time (18:00), or next.",
        "bad_tags": "“{value}” is not a list of tags: use e.g. rag,llm (none clears it).",
        "bad_answers": "“{value}” is not an answer mode: use spoiler or private.",
        "bad_lang": "“{value}” is not a language I speak: use en or zh (auto follows the platform).",
        "bad_role": "“{value}” is not a role name: use e.g. Study (none clears it).",
        "bad_paused": "“{value}” is not on or off: use /settings paused on (or off).",
        "example_time": "18:30",
        "example_zone": "Europe/Berlin",
        "example_days": "mon-fri",
        "example_reveal": "4h",
        "example_tags": "rag,llm",
        "example_answers": "spoiler",
        "example_lang": "zh",
        "example_role": "Study",
        "example_paused": "on",
        "unset_tags": "all questions",
        "unset_lang": "automatic",
        "unset_role": "none",
        "setting_on": "on",
        "setting_off": "off",
        "role_discord_only": (
            "The role setting is for Discord (members with that role count as admins); "
            "it has no effect here, so nothing was changed."
        ),
        # --- forgetme
        "forget_confirm": (
            "This deletes, in every chat and for good, your answers ({answers}, with their grades) and "
            "your review cards ({reviews}). Press the button to confirm."
        ),
        "button_forget": "Yes, delete my data",
        "forget_not_yours": "That button belongs to someone else. Send /forgetme yourself.",
        "forgotten": "Done: your answers, grades and reviews are deleted everywhere.",
        "forget_nothing": "There is nothing to delete: I keep no answers, grades or reviews of yours.",
        # --- dates
        "weekdays": "Mon Tue Wed Thu Fri Sat Sun",
        "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
        "date": "{weekday} {day} {month}",
        "date_year": "{weekday} {day} {month} {year}",
        "day_today": "today ({date})",
        "day_tomorrow": "tomorrow ({date})",
        "day_later": "{date} (in {days} days)",
        "day_at": "{day} at {time}",
        # A chat's days as the settings spell them ("daily", "mon-fri", "mon,wed,fri").
        "every_day": "daily",
        "day_names": "mon tue wed thu fri sat sun",
        "day_range": "{first}-{last}",
        "day_separator": ",",
        # --- feedback from a model (shown only where a model is configured and the chat has it on)
        "help_feedback": "a private review of your answer by a model: covered, missed, advice, a suggested grade",
        "feedback_notice": (
            "🔎 Feedback is on here: when you ask for feedback on your answer, your answer is sent "
            "to the configured model ({model})."
        ),
        "button_feedback": "Feedback",
        "feedback_heading": "🔎 **Feedback on “{title}”** (score {score}/5)",
        "feedback_covered": "**Covered**",
        "feedback_missed": "**Missed**",
        "feedback_nothing_listed": "• (none)",
        "feedback_advice": "💡 {advice}",
        "feedback_suggested": "Suggested grade: **{grade}**. Press it to accept, or choose another.",
        "feedback_caveat": "A review by {model}; it can be wrong. The reference answer is what counts.",
        "feedback_grade_choice": "Your answer and grade are kept. Grade it yourself:",
        "feedback_off": "Feedback is off for that question's chat. Its admins can turn it on with /settings feedback on.",
        "feedback_nothing": "You have not answered a revealed question yet. /feedback with a question's number asks about that one.",
        "feedback_not_answered": "You have not answered this question, so there is nothing to review.",
        "feedback_not_revealed": "Feedback comes after the reveal, {when}.",
        "feedback_pending": "Your review is on its way.",
        "feedback_user_limit": "You have had {limit} reviews today, the daily limit. Try again tomorrow (UTC).",
        "feedback_chat_limit": "That chat has had its {limit} reviews for today. Try again tomorrow (UTC).",
        "feedback_failed_timeout": "The model took too long, so there is no review this time.",
        "feedback_failed_refused": "The model declined to review this answer.",
        "feedback_failed_invalid": "The model's reply could not be read as a review.",
        "feedback_failed_unavailable": "The model could not be reached just now.",
        "feedback_failed_busy": "The model is busy with other reviews; try again in a minute.",
        "feedback_try_again": "Try /feedback {post} again later.",
        "example_feedback": "on",
        "bad_feedback": "“{value}” is not on or off: use /settings feedback on (or off).",
        "feedback_turned_on": "Members' answers are sent to {model} when they press Feedback or send /feedback.",
    },
    "zh": {
        "help_start": "欢迎语和用法",
        "help_help": "所有命令，每条一行",
        "help_quiz": "马上来一道题：先复习到期的，再出新题",
        "help_answer": "回答当前的题（或你回复的那道题）",
        "help_reveal": "要点总结、「完整答案」按钮、答题的人和评分按钮；题号见题目标题后（第 12 题）",
        "help_full": "一道题的完整参考答案；题号见题目标题后（第 12 题）",
        "help_grade": "给自己的回答评分（again、hard、good 或 easy），用于间隔重复",
        "help_skip": "马上换一道题（私聊中，或在你自己的 /quiz 上）",
        "help_stats": "你的回答数、评分、连续天数、待复习和标签",
        "help_top": "本群排行榜：本周和总榜",
        "help_tags": "标签和公司，以及各自的题数",
        "help_subscribe": "在本聊天每天推送一道题（群里仅管理员）",
        "help_unsubscribe": "停止每日推送（群里仅管理员）",
        "help_settings": "查看设置，或修改一项（群里仅管理员）",
        "help_forgetme": "删除你在所有聊天中的回答、评分和复习记录",
        "help_reload": "重新读取题库（仅限机器人所有者）",
        "owners_only": "只有机器人的所有者（DAILYQ_OWNERS）可以这样做。",
        "reload_done": "已重新加载：{questions} 道题（{warnings} 条警告，`dailyq check` 可列出）。",
        "reload_kept": "题库有错误，已保留当前题库（{questions} 道题）：",
        "reload_empty": "• 没有读到任何题目",
        "option_filter": "标签、公司或题目中的词",
        "option_text": "你的回答",
        "option_id": "题号，见题目标题后（第 12 题）",
        "option_grade": "again、hard、good 或 easy",
        "option_time": "HH:MM，例如 09:30",
        "option_zone": "IANA 时区，例如 Asia/Shanghai",
        "option_key": "time、zone、days、reveal、tags、answers、lang、role 或 paused",
        "option_value": "新的值",
        "option_confirm": "输入 yes 确认",
        "help_header": "**命令**",
        "placeholder_filter": "筛选",
        "placeholder_text": "回答",
        "placeholder_id": "题号",
        "placeholder_grade": "评分",
        "placeholder_time": "时间",
        "placeholder_zone": "时区",
        "placeholder_key": "设置项",
        "placeholder_value": "值",
        "placeholder_confirm": "确认",
        "list_separator": "、",
        "list_last": "{names} 和 {last}",
        "tag_count": "{name}（{count}）",
        "welcome": (
            "**欢迎使用 {bot}！**每天一道面试题：作答、查看参考答案、给自己评分，"
            "间隔重复会在该复习时再次出题。\n\n"
            "• /quiz：马上来一道题\n"
            "• 回复题目消息即可作答（群里请用剧透隐藏：`||你的回答||`），或用 /answer 加上你的回答\n"
            "• /reveal：要点总结、完整答案和评分按钮\n"
            "• /subscribe：在本聊天每天推送一道题\n"
            "• /stats、/top、/tags、/settings、/help：其他功能"
        ),
        "unknown_command": "未知命令 {command}。发送 /help 查看命令列表。",
        "admins_only": "这里只有管理员可以使用 {command}。",
        "private_hint": "发送 /quiz 获取一道题，或发送 /help 查看全部功能。",
        "question_gone": "这道题已不在题库中。",
        "bad_post_id": "「{value}」不是题号（题号是整数，见题目标题后）。不填题号即表示本聊天当前的题目。",
        "no_such_post": "没有这个编号的题目。题号见题目标题后（第 12 题）。",
        "post_elsewhere": "这道题是在另一个聊天里出的：请在那里作答、查看答案或评分。",
        "question_heading": "❓ **{title}** · {number}",
        "post_number": "第 {number} 题",
        "hint_private": "直接输入你的回答，然后发送 /reveal。",
        "hint_group_spoiler": "回复这条消息作答，并用剧透隐藏回答（`||你的回答||`）。",
        "hint_group_thread": "点「作答」，或在这道题的子区中用剧透隐藏作答（`||你的回答||`）。",
        "hint_group_console": "输入用剧透隐藏的回答（`||你的回答||`）：每一行都回答最新的一道题。",
        "hint_group_private": "请私下作答：点「私下作答」，或在私聊中给我发送 /answer。",
        "button_reveal": "查看答案",
        "button_skip": "跳过",
        "button_answer_privately": "私下作答",
        "button_answer": "作答",
        "button_open_private": "打开私聊",
        "private_blocked": "我还不能私信你：请先打开与我的私聊并点「开始」，然后再试一次。",
        "answer_modal_title": "你的回答",
        "answer_modal_label": "只有你和机器人能看到",
        "command_outdated": "我不认识这个命令：命令列表正在更新，请一分钟后再试（或输入 / 查看当前命令）。",
        "role_not_found": "这里没有名为「{name}」的角色：请提及该角色（@{name}）或给出它的 ID。",
        "role_ambiguous": "这里有多个名为「{name}」的角色：请提及你指的那个（@{name}）或给出它的 ID。",
        "field_company": "公司",
        "field_round": "轮次",
        "field_date": "日期",
        "field_tags": "标签",
        "console_daily_question": "每日一题",
        "console_reveal": "公布答案",
        "console_scheduled": "定时消息",
        "console_only_you": "仅你可见",
        "console_only_user": "仅 {name} 可见",
        "console_to": "发给 {chat}",
        "console_opening": "输入 /start 开始，/help 查看全部命令，Ctrl-D 退出。",
        "console_cast": "你扮演 {cast}：输入一行 `{speaker}: 内容` 即以 {speaker} 的身份发言。",
        "console_admin": "{name}（管理员）",
        "error": "出了点问题，请稍后再试。",
        "answer_here": "在这里发送你的回答，它会记到群里的这道题上。",
        "no_match": "没有题目匹配「{filter}」。可以试试这些标签：{tags}。/tags 列出全部。",
        "skip_where": "/skip 只能在私聊中使用，或用在你自己的 /quiz 上。",
        "skip_only_one": "只有这一道题匹配「{filter}」：回答它，或用 /quiz 换一个筛选条件。",
        "skip_only_question": "题库中只有这一道题。",
        "answer_usage": "请在命令后写上回答：/answer 你的回答。也可以直接回复题目消息。",
        "answer_too_long": "回答最多 {limit} 个字符，你的有 {length} 个。请缩短后再发送。",
        "nothing_to_answer": "这里没有待回答的题目。发送 /quiz 获取一道。",
        "answer_unmatched": "我无法判断这是在回答哪道题：请回复题目消息作答，或发送 /answer 加上你的回答。",
        "answer_saved": "已收到你对「{title}」的回答（{chars}）。准备好了就发送 /reveal。",
        "answers_closed": "「{title}」的答案已经公布，不再接收回答。发送 /quiz 换一道新题。",
        "answer_kept_revealed": "「{title}」的答案已经公布，你的回答保持不变。发送 /quiz 换一道新题。",
        "answer_kept_graded": "你已经给「{title}」的回答评过分，回答保持不变。发送 /quiz 换一道新题。",
        "characters_one": "1 个字符",
        "characters_many": "{count} 个字符",
        "answer_updated": "已更新你对「{title}」的回答（{chars}），旧回答保留在历史中。",
        "spoiler_reminder": "小提示：在群里请隐藏回答，让其他人先思考：`||你的回答||`。",
        "private_reminder": "小提示：本群采用私下作答，请在私聊中把回答发给我。",
        "nothing_to_reveal": "这里没有可以查看答案的题目。发送 /quiz 获取一道。",
        "reveal_not_yet": "答案将于{when}公布。在此之前只有管理员可以提前公布。",
        "reveal_heading": "💡 **{title}** · {number}",
        "reveal_more": "完整答案：请点下方按钮。",
        "answered_by": "作答的人：{names}",
        "answered_by_nobody": "还没有人作答。",
        "button_full": "完整答案",
        "full_answer_heading": "📖 **{title}** · {number}",
        "grade_again": "重来",
        "grade_hard": "困难",
        "grade_good": "良好",
        "grade_easy": "简单",
        "grade_usage": "评分请用 /grade again、/grade hard、/grade good 或 /grade easy（需要时再加题目编号）。",
        "nothing_to_grade": "这里没有可以评分的题目。",
        "grade_not_answered": "{name}，你还没有回答这道题，无法评分。请先作答。",
        "grade_superseded": "你之后又给这道题评过分，以后来的评分为准。",
        "graded": "评分：{grade}。下次复习：{next}。",
        "stats_heading": "📊 **{name}**",
        "stats_counts": "已回答：{answered} · 已评分：{graded}",
        "stats_streak": "连续天数：{current} 天（最长：{best} 天）",
        "stats_due": "现在待复习：{due}",
        "stats_tags": "按标签：{tags}",
        "top_week": "🏆 **本周**",
        "top_all": "🏆 **总榜**",
        "top_line": "{rank}. {name}：{answers} 个回答，{grades} 个评分",
        "top_empty": "还没有人作答。",
        "tags_heading": "🏷 **{tags} 个标签**，共 {questions} 道题",
        "tags_none": "题库中没有标签。",
        "tags_more": "……另有 {count} 个（可用 /quiz 加任意标签或公司）",
        "companies_heading": "🏢 **{companies} 家公司**",
        "subscribe_usage": "用法：/subscribe、/subscribe 09:30 或 /subscribe 09:30 Asia/Shanghai。",
        "subscribed": "已订阅：每天 {time}（{zone}）推送一道题，日期：{days}。第一道题将于{first}推送。",
        "unsubscribed": "已退订：这里不再推送每日一题。发送 /subscribe 可重新开始。",
        "not_subscribed": "本聊天没有订阅。发送 /subscribe 开始每日一题。",
        "settings_heading": "⚙️ **设置**",
        "settings_how": "修改方式：/settings 键 值，例如 /settings time 18:30。",
        "status_subscribed": "已订阅；下一道题将于{when}推送。",
        "status_paused": "已订阅，但已暂停：发送 /settings paused off 恢复。",
        "status_not_subscribed": "未订阅：发送 /subscribe 开始每日一题。",
        "next_post": "下一道题将于{when}推送。",
        "unknown_setting": "没有「{key}」这个设置。可用的设置有：{keys}。",
        "setting_needs_value": "请给 {key} 一个值，例如 /settings {key} {example}",
        "setting_saved": "已保存：{key} 现在是 {value}。",
        "unknown_tags": "没有题目带有标签或公司「{tags}」。一些标签：{known}。",
        "too_many_tags": "这是 {count} 个标签；每日一题最多只能从 {limit} 个标签中选取。",
        "bad_time": "「{value}」不是有效的时间：请用 24 小时制 HH:MM，例如 09:30 或 18:00。",
        "bad_zone": "「{value}」不是有效的时区：请用 IANA 名称，例如 Asia/Shanghai、Europe/Berlin 或 America/New_York。",
        "bad_days": "「{value}」不是有效的日期列表：例如 daily、mon-fri、mon,wed,fri 或 weekends。",
        "bad_reveal": "「{value}」不是有效的公布规则：请用延时（4h、90m）、时间（18:00）或 next。",
        "bad_tags": "「{value}」不是有效的标签列表：例如 rag,llm（none 表示清除）。",
        "bad_answers": "「{value}」不是有效的作答方式：请用 spoiler 或 private。",
        "bad_lang": "「{value}」不是我支持的语言：请用 en 或 zh（auto 跟随平台）。",
        "bad_role": "「{value}」不是有效的角色名：例如 Study（none 表示清除）。",
        "bad_paused": "「{value}」不是 on 或 off：请用 /settings paused on（或 off）。",
        "example_time": "18:30",
        "example_zone": "Asia/Shanghai",
        "example_days": "mon-fri",
        "example_reveal": "4h",
        "example_tags": "rag,llm",
        "example_answers": "spoiler",
        "example_lang": "en",
        "example_role": "Study",
        "example_paused": "on",
        "unset_tags": "全部题目",
        "unset_lang": "自动",
        "unset_role": "无",
        "setting_on": "开",
        "setting_off": "关",
        "role_discord_only": "role 设置只用于 Discord（拥有该角色的成员视为管理员）；在这里不起作用，所以没有做任何修改。",
        "forget_confirm": (
            "这将永久删除你在所有聊天中的 {answers} 个回答（及其评分）和 {reviews} 张复习卡片。请点按钮确认。"
        ),
        "button_forget": "确认删除我的数据",
        "forget_not_yours": "这个按钮属于别人。请自己发送 /forgetme。",
        "forgotten": "完成：你在所有聊天中的回答、评分和复习记录都已删除。",
        "forget_nothing": "没有可删除的内容：我没有保存你的任何回答、评分或复习记录。",
        "weekdays": "周一 周二 周三 周四 周五 周六 周日",
        "months": "1月 2月 3月 4月 5月 6月 7月 8月 9月 10月 11月 12月",
        "date": "{month}{day}日 {weekday}",
        "date_year": "{year}年{month}{day}日 {weekday}",
        "day_today": "今天（{date}）",
        "day_tomorrow": "明天（{date}）",
        "day_later": "{date}（{days} 天后）",
        "day_at": "{day} {time}",
        "every_day": "每天",
        "day_names": "周一 周二 周三 周四 周五 周六 周日",
        "day_range": "{first}至{last}",
        "day_separator": "、",
        "help_feedback": "由模型私下点评你的回答：答到的、漏掉的、一句建议和建议评分",
        "feedback_notice": "🔎 本聊天已开启点评：当你请求点评时，你的回答会发送给所配置的模型（{model}）。",
        "button_feedback": "点评",
        "feedback_heading": "🔎 **对「{title}」的点评**（得分 {score}/5）",
        "feedback_covered": "**答到的要点**",
        "feedback_missed": "**漏掉的要点**",
        "feedback_nothing_listed": "• 无",
        "feedback_advice": "💡 {advice}",
        "feedback_suggested": "建议评分：**{grade}**。点它即可采用，也可以选别的。",
        "feedback_caveat": "以上由 {model} 点评，可能有误；以参考答案为准。",
        "feedback_grade_choice": "你的回答和评分都还在。请自己评分：",
        "feedback_off": "这道题所在的聊天没有开启点评。该聊天的管理员可以用 /settings feedback on 开启。",
        "feedback_nothing": "你还没有回答过已公布答案的题目。/feedback 加题目编号可以点评指定的题。",
        "feedback_not_answered": "你还没有回答这道题，没有可点评的内容。",
        "feedback_not_revealed": "答案公布后才能点评，公布时间：{when}。",
        "feedback_pending": "你的点评正在生成中。",
        "feedback_user_limit": "你今天已经用了 {limit} 次点评，达到每日上限。请明天（UTC）再试。",
        "feedback_chat_limit": "该聊天今天的 {limit} 次点评已用完。请明天（UTC）再试。",
        "feedback_failed_timeout": "模型响应超时，这次没有点评。",
        "feedback_failed_refused": "模型拒绝点评这个回答。",
        "feedback_failed_invalid": "模型的回复无法解读为点评。",
        "feedback_failed_unavailable": "暂时无法连接到模型。",
        "feedback_failed_busy": "模型正忙于其他点评，请一分钟后再试。",
        "feedback_try_again": "请稍后再发送 /feedback {post}。",
        "example_feedback": "on",
        "bad_feedback": "「{value}」不是 on 或 off：请用 /settings feedback on（或 off）。",
        "feedback_turned_on": "成员点「点评」或发送 /feedback 时，他们的回答会发送给 {model}。",
    },
}


def t(lang: str, key: str, /, **values: object) -> str:
    """The message `key` in `lang` (English for a language we lack), with `values` filled in."""
    return CATALOG.get(lang, CATALOG["en"])[key].format(**values)


def count_of(lang: str, noun: str, count: int) -> str:
    """`count` with its noun in the number it takes: "1 character", "2 characters"."""
    return t(lang, f"{noun}_one" if count == 1 else f"{noun}_many", count=count)


def join_list(lang: str, items: Iterable[str]) -> str:
    """Names or tags in a sentence: "a, b, c" in English, "a、b、c" in Chinese."""
    return t(lang, "list_separator").join(items)


def join_list_and(lang: str, items: Sequence[str]) -> str:
    """Names in a sentence, the last after "and": "a, b and c" in English, "a、b 和 c" in Chinese."""
    if len(items) < 2:
        return join_list(lang, items)
    return t(lang, "list_last", names=join_list(lang, items[:-1]), last=items[-1])


def format_days(lang: str, days: str) -> str:
    """A chat's days, as the settings spell them ("daily", "mon-fri", "mon,wed,fri"), in `lang`."""
    if days == "daily":
        return t(lang, "every_day")
    spelled = CATALOG["en"]["day_names"].split()
    names = dict(zip(spelled, t(lang, "day_names").split(), strict=True))
    parts = []
    for part in days.split(","):
        first, _, last = part.partition("-")
        parts.append(t(lang, "day_range", first=names[first], last=names[last]) if last else names[first])
    return t(lang, "day_separator").join(parts)


def format_day(lang: str, day: date, today: date) -> str:
    """A date in words relative to `today`: "tomorrow (Tue 3 Mar)", "Fri 6 Mar (in 4 days)"."""
    weekday = t(lang, "weekdays").split()[day.weekday()]
    month = t(lang, "months").split()[day.month - 1]
    key = "date" if day.year == today.year else "date_year"
    text = t(lang, key, weekday=weekday, day=day.day, month=month, year=day.year)
    days = (day - today).days
    if days == 0:
        return t(lang, "day_today", date=text)
    if days == 1:
        return t(lang, "day_tomorrow", date=text)
    return t(lang, "day_later", date=text, days=days) if days > 1 else text


def format_when(lang: str, instant: datetime, zone: ZoneInfo, now: datetime) -> str:
    """An instant as the chat reads it: "tomorrow (Tue 3 Mar) at 09:30", in the chat's zone."""
    local = instant.astimezone(zone)
    day = format_day(lang, local.date(), now.astimezone(zone).date())
    return t(lang, "day_at", day=day, time=f"{local.hour:02d}:{local.minute:02d}")
