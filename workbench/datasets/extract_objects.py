"""``python -m workbench extract-objects``: the queried objects (class ids) named in each sentence of a YouCook2-BB
sentence file (``text.objects.extract_all``), optionally compared with a split dict's object lists."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..io import DataError, write_json
from ..text.objects import extract_all
from .yc2 import load_class_file, load_sentences, load_split_dict


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sentences", required=True, help="seg_sentence_dict.json")
    p.add_argument("--class-file", required=True, help="class_file.csv")
    p.add_argument("--out", required=True, help="output JSON {segment: [class ids]}")
    p.add_argument("--compare", default="", help="optional split dict (e.g. train_dict.json) to report agreement with")


def run(args: argparse.Namespace) -> int:
    vocab = load_class_file(args.class_file)
    sentences = load_sentences(args.sentences)
    objects = extract_all(sentences, vocab)
    write_json(args.out, objects)
    n_obj = sum(map(len, objects.values()))
    print(f"{len(objects)} sentences, {sum(1 for v in objects.values() if v)} with objects, {n_obj} objects -> {args.out}")
    if args.compare:
        ref = load_split_dict(args.compare, len(vocab))
        missing = [k for k in ref if k not in objects]
        if missing:
            raise DataError(f"{args.compare}: {len(missing)} segments have no sentence in {args.sentences}, e.g. {missing[0]}")
        agree = sum(objects[k] == e.class_ids for k, e in ref.items())
        print(f"agreement with {Path(args.compare).name}: {agree}/{len(ref)} segments have identical class lists")
    return 0
