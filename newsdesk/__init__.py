"""newsdesk: ask questions of news articles and get short answers with numbered citations."""
