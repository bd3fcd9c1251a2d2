"""ix.cost and --cost: FLOPs from opt_einsum's contraction order next to the naive order; sizes are required."""

from __future__ import annotations

import pytest

import indexdiff as ix
from indexdiff.cli import main
from indexdiff.errors import ShapeError


def test_chain_of_matrices_counts_the_good_order():
    c = ix.cost(ix.parse("A_ij B_jk C_kl"), {"i": 10, "j": 1000, "k": 10, "l": 1000})
    # (A B) first: 10·1000·10 multiply-adds, then 10·10·1000; the naive einsum loops over all four indices
    assert c.contractions == 1
    assert c.flops < c.naive_flops / 100
    assert c.largest_intermediate == 10 * 1000


def test_logistic_hessian_is_one_gemm_not_a_cube():
    loss = ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))")
    h = ix.cost(ix.diff(loss, "w", "w"), {"i": 2000, "j": 500})
    gemm = 2 * 2000 * 500 * 500
    assert h.flops <= 1.1 * gemm  # (X d)ᵀ X: one matrix product, plus vector work
    assert h.naive_flops > h.flops


def test_every_index_needs_a_size():
    with pytest.raises(ShapeError) as info:
        ix.cost(ix.parse("x_i A_ij y_j"), {"i": 3})
    assert "no size given for index 'j'" in str(info.value) and "^" in str(info.value)


def test_cli_cost_table_and_missing_sizes(capsys):
    assert main(["x_i A_ij x_j", "--wrt", "x", "--wrt", "x,x", "--cost", "--dims", "i=100"]) == 0
    out = capsys.readouterr().out
    assert "cost (i=100)" in out and "d/dx/dx" in out and "largest intermediate" in out
    assert main(["x_i A_ij x_j", "--wrt", "x", "--cost"]) == 2
    err = capsys.readouterr().err
    assert "no size given for index" in err and "Traceback" not in err
