#!/usr/bin/env python3
"""PyTorch's side of `coderl bench peers`: training steps of SmolLM2 on B x T tokens.

A step is what `coderl bench train` times: forward over B sequences of T tokens with every
position scored (next-token cross-entropy), backward through every block, and one AdamW step
on every parameter. transformers' LlamaForCausalLM loads the GGUF file (dequantized to fp32);
`--mode bf16` runs forward and backward under CPU autocast to bfloat16 (weights and AdamW in
fp32, PyTorch's mixed precision). Prints one JSON line: tokens/s and seconds per step (mean of
the measured steps, after one warm-up step).

    python torch_train.py MODEL.gguf --batch 8 --length 256 --mode fp32 --steps 2
"""

import argparse
import json
import os
import time

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch
from transformers import AutoModelForCausalLM


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--mode", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder, name = os.path.dirname(os.path.abspath(args.gguf)), os.path.basename(args.gguf)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    model.train()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (args.batch, args.length), generator=g)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    times = []
    for step in range(args.steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.mode == "bf16"):
            logits = model(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].float().reshape(-1, vocab), ids[:, 1:].reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step > 0:
            times.append(time.perf_counter() - t0)
    mean = sum(times) / len(times)
    print(json.dumps({"peer": f"PyTorch {torch.__version__}", "mode": args.mode, "batch": args.batch,
                      "length": args.length, "seconds_per_step": mean,
                      "tokens_per_second": args.batch * args.length / mean, "threads": args.threads}))


if __name__ == "__main__":
    main()
