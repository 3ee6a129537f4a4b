"""`newsdesk bot`: the Telegram face of the answering engine, as thin as the REPL.

In a private chat every message is a question; in a group the bot answers when mentioned (@name), when replied
to, or on /ask. Each chat keeps its own conversation for follow-ups. The engine and ingest block (embedding,
SQLite, Chroma), so they run in worker threads and the event loop keeps serving other chats meanwhile; one
chat's questions are answered in order.

One module per reason to change:
- `app`: the python-telegram-bot Application and its transport (builder, defaults, polling, webhook);
- `guards`: who may ask and how often, one handler in front of all the others;
- `flood`: the per-user counts behind the flood limit, in this process or shared by replicas in the database;
- `questions`: answering, and the commands around it (/start, /help, /ask, /reset, /sources);
- `admin`: admins' writes (uploads, /ingest) and feed polling, through an `ArticleWriter` the caller gives;
- `memory`: each chat's conversation, behind the small `ChatMemory` interface (a SQLite file, or PostgreSQL);
- `shared`: the connection through which replicas share the memory and the flood counts;
- `replies`: how the bot speaks in a chat (HTML replies, "typing…", the language of its own words).

The bot reads no settings and imports nothing from `ingest`: `newsdesk.telegram_bot` builds it from the
settings and gives it plain values, the chats' memory and the article writer.
"""
