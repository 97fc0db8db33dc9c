"""Training the zoo's GPT-style decoder on the simulated forge-t1 (issue 3, section 6).

Forward and backward run through torch.compile(backend=chipforge.torch_backend(...)), the
AdamW update through ChipAdamW: all three on the chip's simulator. The recipe is bf16
compute (every tensor in DRAM is bf16, matmuls accumulate in fp32) with fp32 master
weights and an fp32 optimizer. The oracle is PyTorch on the CPU with the same recipe:
fp32 master weights, the forward and backward under bf16 autocast, torch.optim.AdamW.
"""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402

import chipforge  # noqa: E402
from chipforge.compiler import make_chip_adamw  # noqa: E402

STEPS = 50
LR = 3e-3


@pytest.mark.slow
def test_gpt_trains_on_forge_t1_like_pytorch():
    torch._dynamo.reset()
    torch.manual_seed(0)
    model, _ = zoo.gpt_train()
    reference = copy.deepcopy(model)
    backend = chipforge.torch_backend(chip="forge-t1")
    compiled = torch.compile(model, backend=backend, dynamic=False)
    opt = make_chip_adamw("forge-t1")(model.parameters(), lr=LR)
    ref_opt = torch.optim.AdamW(reference.parameters(), lr=LR)
    data = zoo.gpt_train_inputs(4, seed=0)  # a small dataset, cycled
    chip_losses, ref_losses = [], []
    for step in range(STEPS):
        batch = data[step % len(data)]
        loss = compiled(*batch)
        loss.backward()
        opt.step()
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ref_loss = reference(*batch)
        ref_loss.backward()
        ref_opt.step()
        ref_opt.zero_grad()
        chip_losses.append(loss.item())
        ref_losses.append(ref_loss.item())
        assert abs(chip_losses[-1] - ref_losses[-1]) <= 0.02 * ref_losses[-1], step
    # it learns: the last pass over the dataset scores far below the first
    assert sum(chip_losses[-4:]) < 0.5 * sum(chip_losses[:4])
    # forward, backward and optimizer each ran on the chip every step
    kinds = [r.graph.name for r in backend.runners]
    assert kinds.count("forward") == 1 and kinds.count("backward") == 1
    assert all(len(r.results) == STEPS for r in backend.runners)
    assert len(opt.results) == STEPS and all(r.cycles > 0 for r in opt.results)
