"""The global log's Merkle tree gives the roots and proofs of RFC 6962/9162, vector for vector.

Known answers come from transparency-dev/merkle (the Go library behind
Trillian and Tessera, successor of google/certificate-transparency-go's
merkle package): leaf inputs, node and root hashes from
``testonly/constants.go``; inclusion and consistency proofs from
``proof/verify_test.go`` (where leaf numbers are 1-based; here indices are
0-based, as RFC 9162 has them).
"""

from __future__ import annotations

import itertools

import pytest

from smart.ledger import merkle

LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]

ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]

# (index, size, proof) — verify_test.go's inclusionProofs, leaf numbers made 0-based.
INCLUSION_PROOFS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (0, 1, []),
]

# (old size, new size, proof) — verify_test.go's consistencyProofs.
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

LEAVES = [merkle.leaf_hash(data) for data in LEAF_INPUTS]


def _subtree(level: int, index: int) -> bytes:
    return merkle.root(LEAVES[index << level : (index + 1) << level])


def test_leaf_and_node_hashes_match_the_reference_tree() -> None:
    for level, row in enumerate(NODE_HASHES):
        for index, expected in enumerate(row):
            assert _subtree(level, index).hex() == expected


@pytest.mark.parametrize("size", range(len(ROOTS)))
def test_root_of_every_size_matches_the_reference(size: int) -> None:
    assert merkle.root(LEAVES[:size]).hex() == ROOTS[size]
    frontier, _ = merkle.Frontier.empty().extend(LEAVES[:size])
    assert frontier.root().hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proofs_match_the_reference(index: int, size: int, proof: list[str]) -> None:
    made = merkle.prove(merkle.inclusion_ranges(index, size), _subtree)
    assert [h.hex() for h in made] == proof
    merkle.verify_inclusion(index, size, LEAVES[index], made, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proofs_match_the_reference(old: int, new: int, proof: list[str]) -> None:
    made = merkle.prove(merkle.consistency_ranges(old, new), _subtree)
    assert [h.hex() for h in made] == proof
    merkle.verify_consistency(old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), made)


def test_every_proof_between_every_pair_of_sizes_verifies_and_a_flipped_bit_does_not() -> None:
    leaves = [merkle.leaf_hash(bytes([n])) for n in range(40)]
    roots = [merkle.root(leaves[:n]) for n in range(41)]

    def subtree(level: int, index: int) -> bytes:
        return merkle.root(leaves[index << level : (index + 1) << level])

    for size in range(1, 41):
        for index in range(size):
            proof = merkle.prove(merkle.inclusion_ranges(index, size), subtree)
            merkle.verify_inclusion(index, size, leaves[index], proof, roots[size])
            for bad in range(len(proof)):
                broken = [bytes([p[0] ^ 8]) + p[1:] if i == bad else p for i, p in enumerate(proof)]
                with pytest.raises(merkle.ProofError):
                    merkle.verify_inclusion(index, size, leaves[index], broken, roots[size])
    for old, new in itertools.combinations(range(1, 41), 2):
        proof = merkle.prove(merkle.consistency_ranges(old, new), subtree)
        merkle.verify_consistency(old, new, roots[old], roots[new], proof)
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(old, new, roots[old], roots[new - 1], proof)


def test_a_frontier_keeps_the_perfect_subtrees_it_completes() -> None:
    frontier, kept = merkle.Frontier.empty().extend(LEAVES[:5], keep_level=1)
    frontier, more = frontier.extend(LEAVES[5:], keep_level=1)
    stored = {(level, index): h.hex() for level, index, h in kept + more}
    expected = {(lv, i): h for lv, row in enumerate(NODE_HASHES) for i, h in enumerate(row) if lv >= 1}
    assert stored == expected
    again = merkle.Frontier.from_bytes(frontier.size, frontier.to_bytes())
    assert again == frontier and again.root().hex() == ROOTS[8]


def test_a_proof_of_the_wrong_shape_is_refused() -> None:
    root8 = bytes.fromhex(ROOTS[8])
    proof = [bytes.fromhex(h) for h in INCLUSION_PROOFS[0][2]]
    with pytest.raises(merkle.ProofError, match="shorter"):
        merkle.verify_inclusion(0, 8, LEAVES[0], proof[:-1], root8)
    with pytest.raises(merkle.ProofError, match="longer"):
        merkle.verify_inclusion(0, 8, LEAVES[0], [*proof, root8], root8)
    with pytest.raises(merkle.ProofError, match="not in a tree"):
        merkle.verify_inclusion(8, 8, LEAVES[0], proof, root8)
