"""Recency ordering: the last part of a search, putting fused passages in the order the answer reads them.

Relevance decides, and between equally relevant passages (the same wire story in two papers) the newer article
comes first. For questions about "the latest" or "today", passages about as relevant as the best one come
newest first.
"""

from __future__ import annotations

from dataclasses import dataclass

from vectorstore.fusion import Fused


@dataclass(frozen=True)
class Recency:
    """`margin`: for questions that ask for recent news, passages whose levelled dense cosine is within this of
    the best one count as equally relevant and come newest first (e5 puts a passage on the same story about
    0.02 lower)."""

    margin: float = 0.03

    def order(self, fused: Fused, dates: dict[str, int], asks_for_recent: bool) -> list[str]:
        """The chunk ids of `dates` (YYYYMMDD, 0 when unknown; only passages of completely written articles have
        one), best first. Fused scores equal to 4 decimals count as equal."""
        recent_first: set[str] = set()
        if asks_for_recent and fused.dense:
            bar = max(fused.dense.values()) - self.margin
            lowest = min(fused.dense.values())
            recent_first = {cid for cid in dates if fused.dense.get(cid, lowest) >= bar}
            if not any(dates[cid] for cid in recent_first):
                recent_first = set()  # undated articles: relevance alone

        def rank(cid: str) -> tuple[bool, int, float, int]:
            newest = -dates[cid] if cid in recent_first else 0
            return (cid not in recent_first, newest, -round(fused.scores[cid], 4), -dates[cid])

        return sorted(dates, key=rank)
