#!/usr/bin/python3
"""A small synthetic Tree of Life label set, as the hub lays it out: OUT/embeddings/
txt_emb_species.npy ([D, N] float32) and txt_emb_species.json (N entries
[[kingdom, phylum, class, order, family, genus, species_epithet], common_name]).
Deterministic (numpy PCG64, fixed seed): the reference generator and the test both run it, so
the label set needs no committing. It has what pybioclip's rank sums must get right: the genus
Morus in two kingdoms (a bird and a mulberry), a family 'incertae sedis' under two orders,
genus-level taxa with an empty epithet, common names that are empty or hold commas, quotes and
non-ASCII letters. Usage: make_label_set.py OUT [D] [--fp16]"""
import json, os, sys
import numpy as np

SEED = 20261203
SYL = ["ba", "cor", "di", "fel", "gra", "hol", "lin", "mar", "nos", "pel", "qua", "ros", "sil", "tor", "ur",
       "vex", "zan", "phy", "chlo", "dra"]


def word(rng, n=3):
    return "".join(SYL[i] for i in rng.integers(0, len(SYL), size=n))


def main():
    out = sys.argv[1]
    D = int(sys.argv[2]) if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else 32
    fp16 = "--fp16" in sys.argv
    rng = np.random.Generator(np.random.PCG64(SEED))
    names = []
    for kingdom in ["Animalia", "Plantae", "Fungi"]:
        for p in range(3):
            phylum = word(rng).capitalize() + "phyta"[: 2 + p]
            for c in range(int(rng.integers(2, 4))):
                cls = word(rng).capitalize() + "ia"
                for o in range(2):
                    order = word(rng).capitalize() + "ales"
                    families = [word(rng).capitalize() + "aceae" for _ in range(int(rng.integers(2, 4)))]
                    if c == 0 and p == 0:
                        families.append("incertae sedis")  # same name under every such order
                    for family in families:
                        for g in range(int(rng.integers(3, 6))):
                            genus = word(rng, 2).capitalize() + "us"
                            for s in range(int(rng.integers(2, 8))):
                                epithet = "" if s == 0 and g % 2 == 0 else word(rng, 2)
                                common = ["", word(rng, 2) + " " + word(rng, 1), word(rng, 2) + ", the " + word(rng, 1),
                                          'the "' + word(rng, 1) + '"', "épi " + word(rng, 1)][int(rng.integers(0, 5))]
                                names.append([[kingdom, phylum, cls, order, family, genus, epithet], common])
    # the same genus in two kingdoms
    names.append([["Animalia", names[0][0][1], names[0][0][2], names[0][0][3], "Sulidae", "Morus", "bassanus"],
                  "Northern gannet"])
    names.append([["Animalia", names[0][0][1], names[0][0][2], names[0][0][3], "Sulidae", "Morus", "serrator"],
                  "Australasian gannet"])
    plant = next(n for n in names if n[0][0] == "Plantae")[0]
    names.append([["Plantae", plant[1], plant[2], plant[3], "Moraceae", "Morus", "alba"], "white mulberry"])
    names.append([["Plantae", plant[1], plant[2], plant[3], "Moraceae", "Morus", ""], ""])
    N = len(names)
    genus_of = {}
    for n in names:
        genus_of.setdefault(tuple(n[0][:6]), len(genus_of))
    gvec = rng.standard_normal(size=(len(genus_of), D)).astype(np.float32)
    emb = np.empty((D, N), dtype=np.float32)
    for j, n in enumerate(names):
        v = 0.8 * gvec[genus_of[tuple(n[0][:6])]] + rng.standard_normal(size=D).astype(np.float32)
        emb[:, j] = v / np.sqrt(np.sum(v.astype(np.float64) ** 2))
    os.makedirs(os.path.join(out, "embeddings"), exist_ok=True)
    np.save(os.path.join(out, "embeddings", "txt_emb_species.npy"), emb.astype(np.float16) if fp16 else emb)
    with open(os.path.join(out, "embeddings", "txt_emb_species.json"), "w", encoding="utf-8") as f:
        json.dump(names, f)
    print(f"{out}: {N} taxa, D={D}", file=sys.stderr)


if __name__ == "__main__":
    main()
