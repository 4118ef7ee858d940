"""torchrun entry for the DDP test's collective check: every rank joins the process group
the trainer would use on its device (NCCL on CUDA, gloo on a CPU), all-reduces its rank and
takes one DDP step on a tiny model; rank 0 prints one JSON line with what it saw.  It runs
even at world size 1, where the trainer itself never creates a process group, so a one-GPU
machine still proves that NCCL loads and reduces on its GPU."""

import gc
import json
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def main() -> None:
    cuda = os.environ.get("NCCL_ENTRY_DEVICE", "cpu").startswith("cuda")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    total = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(total)
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if cuda else None)
    torch.manual_seed(rank)  # different data per rank: DDP must still keep the replicas equal
    ddp(torch.randn(8, 4, device=device)).square().mean().backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        print(json.dumps({"backend": dist.get_backend(), "world_size": world, "all_reduce": float(total.item()),
                          "replicas_equal": all(torch.equal(g, gathered[0]) for g in gathered),
                          "rank0_device": str(device)}))
    # DDP's reducer holds the group and gloo threads: release it before the group goes, or a
    # rank can abort at exit ("terminate called without an active exception"; seen under load).
    del ddp
    gc.collect()
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
