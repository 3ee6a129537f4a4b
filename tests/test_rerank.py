"""The optional cross-encoder reranker (NEWSDESK_RERANKER), with a tiny cross-encoder that the test builds, trains
and saves itself (nothing is downloaded): through the real engine and `newsdesk ask` it moves the passage that
answers from last to first, and a setting that names nothing loadable is one line naming NEWSDESK_RERANKER."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer
from tokenizers.models import WordPiece
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tokenizers.processors import TemplateProcessing

from bot.engine import AnswerEngine
from bot.rerank import CrossEncoderReranker, RerankerUnavailable
from ingest.articles import Article
from ingest.pipeline import Ingester, embedding_text
from newsdesk.cli import cli
from vectorstore.embeddings import NewsEmbeddings
from vectorstore.store import Store

# English questions about a French article: the search ranks the English stories that share the question's words
# ("wind", "fire") above the one that answers (the case issue 13 describes).
QUESTIONS = ["How strong was the wind during the fire?", "What was the wind speed during the fire?"]
ANSWERING = "incendie"
ARTICLES = [
    Article(
        id="wind-farm",
        title="Wind farm approved off the Kestrel coast",
        date="2024-05-02",
        text="The regional council approved a wind farm of forty turbines off the Kestrel coast. Supporters said the"
        " strong wind on this coast makes it one of the best sites in the country. Fishermen fear the turbines"
        " will close their grounds.",
    ),
    Article(
        id="fire-drill",
        title="Fire drill empties Brennock city hall",
        date="2024-05-03",
        text="A fire drill emptied Brennock city hall on Tuesday morning. Staff left the building in six minutes,"
        " the fire service said, one minute faster than last year.",
    ),
    Article(
        id="forest-trail",
        title="New forest trail opens near Ashby",
        date="2024-05-04",
        text="A new trail through the Ashby forest opened on Saturday. Walkers can follow twelve kilometres of"
        " paths between the oaks, with two shelters on the way.",
    ),
    Article(
        id="storm",
        title="Storm warning lifted for the north",
        date="2024-05-05",
        text="Forecasters lifted the storm warning for the north on Sunday. The wind is expected to ease overnight"
        " and rain to stop by Monday.",
    ),
    Article(
        id=ANSWERING,
        title="Incendie dans le massif de Pierrefeu",
        date="2024-05-06",
        text="Un incendie a parcouru trois cents hectares de pinède samedi dans le massif de Pierrefeu. Les rafales"
        " atteignaient quatre-vingts kilomètres par heure, selon les pompiers, ce qui a compliqué leur"
        " intervention. Aucune maison n'a brûlé.",
    ),
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_cross_encoder(folder: Path, num_labels: int = 1) -> Path:
    """A 2-layer BERT cross-encoder over the words of these articles, trained for a few steps on 10 pairs to score
    the answering article high for the questions: a stand-in for a real reranker that knows which passage answers.
    It sees each passage as the reranker gives it (title, then text). With 2 labels it is left untrained: it only
    has to load."""
    import torch  # torch and transformers take seconds to import: only the (slow) tests that build a model pay
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    passages = {a.id: embedding_text(a.title, a.text) for a in ARTICLES}
    words = sorted({w for t in [*QUESTIONS, *passages.values()] for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    vocab = {token: i for i, token in enumerate(SPECIAL + words)}
    wordpiece = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    wordpiece.normalizer = BertNormalizer(lowercase=True, strip_accents=False)
    wordpiece.pre_tokenizer = BertPreTokenizer()
    wordpiece.post_processor = TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=wordpiece,
        model_max_length=128,
        **{f"{name}_token": f"[{name.upper()}]" for name in ("unk", "pad", "cls", "sep", "mask")},
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    model = BertForSequenceClassification(config)
    if num_labels == 1:
        pairs = [(q, text, float(key == ANSWERING)) for q in QUESTIONS for key, text in passages.items()]
        batch = tokenizer([p[0] for p in pairs], [p[1] for p in pairs], padding=True, return_tensors="pt")
        labels = torch.tensor([p[2] for p in pairs])
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(20):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**batch).logits.squeeze(-1), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cross_encoder(tmp_path_factory.mktemp("cross-encoder"))


@pytest.fixture(scope="module")
def fire_store(tmp_path_factory: pytest.TempPathFactory, embedder: NewsEmbeddings) -> Store:
    store = Store(tmp_path_factory.mktemp("rerank"), embedder)
    Ingester(store).ingest(ARTICLES)
    return store


def test_reranker_moves_the_answering_passage_first(fire_store: Store, cross_encoder: Path) -> None:
    plain = AnswerEngine(fire_store).ask(QUESTIONS[0], k=4)
    assert plain.retrieved[0].article_id != ANSWERING, "without the reranker the answering passage is not first"
    reranked = AnswerEngine(fire_store, reranker=CrossEncoderReranker(str(cross_encoder))).ask(QUESTIONS[0], k=4)
    assert reranked.retrieved[0].article_id == ANSWERING
    assert {h.chunk_id for h in reranked.retrieved} == {h.chunk_id for h in plain.retrieved}, "reordered, no more"
    first, *others = [h.score for h in reranked.retrieved]
    assert first > 0.9 > 0.1 > max(others), "search_score is the reranker's relevance, 0 to 1"


def test_ties_keep_the_search_order(fire_store: Store, cross_encoder: Path) -> None:
    reranker = CrossEncoderReranker(str(cross_encoder))
    hits = fire_store.search(QUESTIONS[0], 4)
    first, answering = hits[0], next(h for h in hits if h.article_id == ANSWERING)
    twin = replace(first, chunk_id="twin")  # the same passage scores the same
    for order in ([first, twin, answering], [twin, first, answering]):
        ranked = reranker.rerank(QUESTIONS[0], order)
        assert [h.chunk_id for h in ranked] == [answering.chunk_id, order[0].chunk_id, order[1].chunk_id]
    assert reranker.rerank(QUESTIONS[0], []) == []


@pytest.mark.slow
def test_newsdesk_ask_with_a_reranker_folder(
    data_dir: Path, cross_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    articles = data_dir.parent / "articles.jsonl"
    articles.write_text("\n".join(json.dumps(a.__dict__, ensure_ascii=False) for a in ARTICLES) + "\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["ingest", str(articles)]).exit_code == 0
    before = json.loads(runner.invoke(cli, ["ask", "--json", "--k", "4", QUESTIONS[0]]).output)
    monkeypatch.setenv("NEWSDESK_RERANKER", str(cross_encoder))
    result = runner.invoke(cli, ["ask", "--json", "--k", "4", QUESTIONS[0]])
    assert result.exit_code == 0, result.output
    after = json.loads(result.output)
    assert before["retrieved"][0]["article_id"] != ANSWERING == after["retrieved"][0]["article_id"]


@pytest.mark.slow
def test_a_reranker_that_does_not_load_is_one_line_naming_the_setting(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    (not_a_model / "config.json").write_text("{}")
    two_scores = build_cross_encoder(tmp_path / "two-labels", num_labels=2)
    cases = {
        str(tmp_path / "missing"): "no such folder, and no hub model of that name in the local cache",
        "nosuch-org/nosuch-reranker": "give the path of a local model folder, or set HF_HUB_OFFLINE=0",
        str(not_a_model): "the folder does not load as a sentence-transformers CrossEncoder",
        str(two_scores): "the model gives 2 scores per pair, not one",
    }
    runner = CliRunner()
    for spec, says in cases.items():
        monkeypatch.setenv("NEWSDESK_RERANKER", spec)
        result = runner.invoke(cli, ["ask", "What did Peskov say?"])
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: NEWSDESK_RERANKER={spec}: ") and says in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    with pytest.raises(RerankerUnavailable, match="NEWSDESK_RERANKER=nosuch-org/nosuch-reranker: "):
        CrossEncoderReranker("nosuch-org/nosuch-reranker")
