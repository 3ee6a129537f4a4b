"""Text handling every layer shares: language detection, stop words and stems, names and numbers, sentence
boundaries, dates as articles write them. It imports none of newsdesk's other packages, so anything may use it."""
