"""Local fake platform servers that the real client libraries talk to over HTTP on 127.0.0.1."""
