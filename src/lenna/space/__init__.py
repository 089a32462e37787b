"""The search space: candidate ops, cells, networks, genotypes and the specs sampled from them."""
