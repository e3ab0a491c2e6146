"""Maintenance text: a tiny BERT (``BertForMaskedLM``) pretrained by masked-language modelling.

The WordPiece tokenizer is trained by ``tokenizers`` on the text corpus itself (no hub
download). The backbone is saved with ``save_pretrained`` (safetensors) plus ``tokenizer.json``
and the Hugging Face tokenizer files, and loaded from that local directory only.
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

from transformers import BertConfig, BertForMaskedLM

from mfg_pipeline.modalities.base import CONFIG_JSON, Backbone, Inputs
from mfg_pipeline.storage import atomic
from mfg_pipeline.storage.artifacts import Corpus, LabeledDataset
from mfg_pipeline.training.seeding import derive_seed

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_JSON = "tokenizer.json"
HF_DIR = "hf"
PIECE_WEIGHTS = "piece_weights.safetensors"

DEFAULT_CONFIG: dict[str, Any] = {
    "vocab_size": 600,  # ~870 distinct words in the corpus: sub-word pieces shared by typos/abbreviations
    "min_frequency": 2,
    "lowercase": True,
    "hidden_size": 128,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 256,
    "max_length": 48,
    "dropout": 0.1,
    "mlm_probability": 0.15,
    "whole_word_mask": True,  # mask every piece of a chosen word (## continuation pieces follow their head)
    "pool_layers": "all",  # states: mean-pooled token states of the embedding layer and every layer | last
    # "states": the pooled MLM token states (pool_layers). "pieces": the bag of the corpus-trained
    # WordPiece pieces (1 + log count, L2-normalised), the MLM unread. On the excavator logs the
    # learned vocabulary is what transfers (macro-F1 0.84 against 0.63 from the states).
    "features": "states",
    # "pieces": each piece's log count times (its smoothed inverse document frequency over the
    # corpus) ** idf_power, learnt from the unlabeled texts: a piece in every log says little.
    # 0: unweighted.
    "idf_power": 0.0,
}
FEATURES = ("states", "pieces")


def train_tokenizer(texts: list[str], vocab_size: int, min_frequency: int = 2, lowercase: bool = True) -> Tokenizer:
    """A BERT WordPiece tokenizer (``tokenizers`` normaliser, pre-tokeniser, model, post-processor)
    whose vocabulary is learnt here by greedy pair merges, like the WordPiece trainer of
    ``tokenizers``, but with deterministic tie-breaking (count, then the pair's text).

    The ``tokenizers`` trainers break ties in hash-map order, which changes from process to
    process: three runs on the same corpus gave three different vocabularies, so the text
    metrics were not reproducible. Here the same corpus always gives the same vocabulary and ids.
    """
    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                            lowercase=lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    words = {w: [w[0], *("##" + ch for ch in w[1:])] for w in sorted(counts)}
    vocab = list(SPECIAL_TOKENS) + sorted({piece for pieces in words.values() for piece in pieces} - set(SPECIAL_TOKENS))
    known = set(vocab)
    while len(vocab) < vocab_size:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, pieces in words.items():
            for pair in zip(pieces, pieces[1:]):
                pairs[pair] += counts[word]
        if not pairs:
            break
        (left, right), count = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        if count < min_frequency:
            break
        merged = left + right.removeprefix("##")
        for word, pieces in words.items():
            out, i = [], 0
            while i < len(pieces):
                if i + 1 < len(pieces) and pieces[i] == left and pieces[i + 1] == right:
                    out.append(merged)
                    i += 2
                else:
                    out.append(pieces[i])
                    i += 1
            words[word] = out
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
    tokenizer = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", vocab.index("[SEP]")), ("[CLS]", vocab.index("[CLS]")))
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    return tokenizer


class TextBackbone(Backbone):
    modality = "text"

    def __init__(self, config: dict[str, Any], tokenizer: Tokenizer | None = None, mlm: BertForMaskedLM | None = None):
        config = {**DEFAULT_CONFIG, **config}
        super().__init__(config)
        if tokenizer is None:
            raise ValueError("a TextBackbone needs a tokenizer (train one with build(config, corpus))")
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.token_to_id("[PAD]")
        self.mask_id = tokenizer.token_to_id("[MASK]")
        self.special_ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS]
        self.structural_ids = [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS if t != "[UNK]"]
        if mlm is None:
            bert_config = BertConfig(
                vocab_size=tokenizer.get_vocab_size(), hidden_size=config["hidden_size"],
                num_hidden_layers=config["num_layers"], num_attention_heads=config["num_heads"],
                intermediate_size=config["intermediate_size"], max_position_embeddings=config["max_length"],
                type_vocab_size=1, pad_token_id=self.pad_id, hidden_dropout_prob=config["dropout"],
                attention_probs_dropout_prob=config["dropout"])
            mlm = BertForMaskedLM(bert_config)
        self.mlm = mlm
        self.continuation = torch.zeros(tokenizer.get_vocab_size(), dtype=torch.bool)
        for token, idx in tokenizer.get_vocab().items():
            if token.startswith("##"):
                self.continuation[idx] = True
        if config["features"] not in FEATURES:
            raise ValueError(f"text features must be one of {FEATURES}, got {config['features']!r}")
        n_pooled = self.mlm.config.num_hidden_layers + 1 if config["pool_layers"] == "all" else 1
        self.feature_dim = (tokenizer.get_vocab_size() if self.pieces
                            else int(self.mlm.config.hidden_size) * n_pooled)
        self.register_buffer("piece_weight", torch.ones(tokenizer.get_vocab_size()))

    @property
    def pieces(self) -> bool:
        return self.config["features"] == "pieces"

    @property
    def idf_weighted(self) -> bool:
        """Piece features weighted by the corpus idf: the weights are learnt state, saved beside the tokenizer."""
        return self.pieces and bool(self.config["idf_power"])

    @property
    def finetunable(self) -> bool:
        return not self.pieces  # the piece bag has no weights: its vocabulary is what was learned

    @property
    def standardize_features(self) -> bool:
        return not self.pieces  # a sparse bag: standardising blows up rare pieces (0.84 -> 0.70)

    @classmethod
    def build(cls, config: dict[str, Any], corpus: Corpus | None = None, seed: int = 0) -> "TextBackbone":
        config = {**DEFAULT_CONFIG, **config}
        if corpus is None:
            raise ValueError("the text backbone trains its tokenizer on the corpus: pass one")
        tok = train_tokenizer(corpus.texts, config["vocab_size"], config["min_frequency"], config["lowercase"])
        torch.manual_seed(derive_seed("init", cls.modality, seed))
        backbone = cls(config, tok)
        if backbone.idf_weighted:
            backbone.piece_weight.copy_(backbone.inverse_document_frequency(corpus.texts) ** config["idf_power"])
        return backbone

    def inverse_document_frequency(self, texts: list[str]) -> torch.Tensor:
        """[vocab]: ln((1 + n) / (1 + texts holding the piece)) + 1 (scikit-learn's smoothed idf)."""
        enc = self.tokenize(texts)
        vocab = self.tokenizer.get_vocab_size()
        rows = torch.arange(len(texts)).unsqueeze(1).expand_as(enc["input_ids"])
        pairs = torch.unique((rows * vocab + enc["input_ids"])[enc["attention_mask"].bool()])  # (text, piece) once
        df = torch.bincount(pairs % vocab, minlength=vocab).float()
        return torch.log((1.0 + len(texts)) / (1.0 + df)) + 1.0

    def fresh(self, seed: int = 0) -> "TextBackbone":
        torch.manual_seed(derive_seed("init", self.modality, seed))
        twin = type(self)(copy.deepcopy(self.config), Tokenizer.from_str(self.tokenizer.to_str()))
        twin.piece_weight.copy_(self.piece_weight)  # learnt with the vocabulary, not a weight
        return twin

    def scratch_twin(self, seed: int, dataset: LabeledDataset, labeled: Any) -> "TextBackbone":
        """Piece features: the vocabulary is the learned part, so the twin learns its own from
        the labeled texts alone, as a model without the unlabeled corpus would. State features:
        new MLM weights on the shared tokenizer (``fresh``)."""
        if not self.pieces:
            return self.fresh(seed)
        return type(self).build(self.config, Corpus(self.modality, None, dataset.index.iloc[list(labeled)]), seed)

    # -- data -----------------------------------------------------------------------------
    def tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        tok = Tokenizer.from_str(self.tokenizer.to_str())
        tok.enable_truncation(self.config["max_length"])
        tok.enable_padding(pad_id=self.pad_id, pad_token="[PAD]")
        enc = tok.encode_batch([t if isinstance(t, str) else "" for t in texts])
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long).reshape(len(enc), -1)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long).reshape(len(enc), -1)
        return {"input_ids": ids, "attention_mask": mask}

    def prepare(self, data: Corpus | LabeledDataset) -> Inputs:
        return self.tokenize(data.texts)

    def forward(self, inputs: Inputs) -> torch.Tensor:
        mask = inputs["attention_mask"]
        ids = inputs["input_ids"]
        if self.pieces:
            return self._piece_bag(ids, mask)
        keep = mask.bool()
        for sid in (self.special_ids[2], self.special_ids[3]):  # [CLS]/[SEP] carry no content
            keep &= ids != sid
        keep = torch.where(keep.any(1, keepdim=True), keep, mask.bool())
        m = keep.unsqueeze(-1).float()
        if self.config["pool_layers"] == "all":
            states = self.mlm.bert(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        else:
            states = (self.mlm.bert(input_ids=ids, attention_mask=mask).last_hidden_state,)
        pooled = [(h.float() * m).sum(1) / m.sum(1).clamp_min(1.0) for h in states]
        return torch.cat(pooled, dim=-1)

    def _piece_bag(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[B, vocab]: 1 + log(count) of each piece in the text (special tokens but [UNK] left
        out) times its ``piece_weight``, L2-normalised, so long and short logs weigh alike."""
        counts = torch.zeros(len(ids), self.feature_dim, device=ids.device)
        counts.scatter_add_(1, ids, mask.float())
        counts[:, self.structural_ids] = 0.0
        bag = torch.where(counts > 0, 1.0 + torch.log(counts.clamp_min(1.0)), counts) * self.piece_weight
        return bag / bag.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def ssl_loss(self, inputs: Inputs, gen: torch.Generator) -> torch.Tensor:
        """BERT masking: 15% of non-special tokens; 80% [MASK], 10% random, 10% unchanged."""
        ids, mask = inputs["input_ids"], inputs["attention_mask"]
        special = torch.zeros_like(ids, dtype=torch.bool)
        for sid in self.special_ids:
            special |= ids == sid
        u = torch.rand(ids.shape, generator=gen).to(ids.device)
        if self.config["whole_word_mask"]:
            # a continuation piece (##x) takes the draw of the word's first piece
            cont = self.continuation.to(ids.device)[ids] & mask.bool()
            pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids)
            head = torch.cummax(torch.where(cont, torch.zeros_like(pos), pos), dim=1).values
            u = torch.gather(u, 1, head)
        chosen = (u < self.config["mlm_probability"]) & ~special & mask.bool()
        if not chosen.any():  # guarantee at least one target
            cand = (~special & mask.bool()).nonzero()
            if len(cand) == 0:
                return self.mlm.bert.embeddings.word_embeddings.weight.sum() * 0.0
            r, c = cand[0]
            chosen[r, c] = True
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        v = torch.rand(ids.shape, generator=gen).to(ids.device)
        rand_ids = torch.randint(len(SPECIAL_TOKENS), self.mlm.config.vocab_size, ids.shape, generator=gen).to(ids.device)
        masked = torch.where(chosen & (v < 0.8), torch.full_like(ids, self.mask_id), ids)
        masked = torch.where(chosen & (v >= 0.8) & (v < 0.9), rand_ids, masked)
        return self.mlm(input_ids=masked, attention_mask=mask, labels=labels).loss

    # -- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        hf = directory / HF_DIR
        hf.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory, prefix=".hf.") as tmp:
            self.mlm.save_pretrained(tmp)  # safetensors
            try:
                from transformers import PreTrainedTokenizerFast

                PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(self.tokenizer.to_str()),
                                        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                        sep_token="[SEP]", mask_token="[MASK]",
                                        model_max_length=self.config["max_length"]).save_pretrained(tmp)
            except Exception:  # the HF tokenizer files are a convenience; tokenizer.json is the source
                pass
            self.tokenizer.save(os.path.join(tmp, TOKENIZER_JSON))
            for name in os.listdir(tmp):
                os.replace(os.path.join(tmp, name), hf / name)
        if self.idf_weighted:
            atomic.write_tensors(directory / PIECE_WEIGHTS, {"piece_weight": self.piece_weight})
        atomic.write_json(directory / CONFIG_JSON, {"modality": self.modality, "config": self.config})

    @classmethod
    def load(cls, directory: Path) -> "TextBackbone":
        directory = Path(directory)
        meta = atomic.read_json(directory / CONFIG_JSON)
        hf = directory / HF_DIR
        tok = Tokenizer.from_file(str(hf / TOKENIZER_JSON))
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a local load; no progress bars in asset logs
        mlm = BertForMaskedLM.from_pretrained(str(hf), local_files_only=True, use_safetensors=True)
        model = cls(meta["config"], tok, mlm)
        if model.idf_weighted:
            model.piece_weight.copy_(atomic.read_tensors(directory / PIECE_WEIGHTS)["piece_weight"])
        model.eval()
        return model


