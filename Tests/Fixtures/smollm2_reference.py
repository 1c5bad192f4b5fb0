#!/usr/bin/env python3
"""PyTorch's side of `Tests/Fixtures/smollm2_reference.json`, recomputed.

The reference was measured with llama.cpp (b4747, fp32 weights and KV cache) and
cross-checked with PyTorch + transformers loading the same GGUF file; its fields
`prompt_ids`, `greedy_48` and `first_position_top5_pytorch` are PyTorch's figures. This
script loads SmolLM2-135M-Instruct from the GGUF file with transformers (weights dequantized
to fp32, all math fp32, eager attention), tokenizes each prompt, takes 48 greedy steps
(argmax of raw logits, lowest id on ties, no stop at EOS) and either compares with the file
(`check`, exit 1 on a difference) or prints its own figures as JSON (`print`).

    python Tests/Fixtures/smollm2_reference.py check Tests/Fixtures/smollm2_reference.json \
        ~/.cache/coderl/models/SmolLM2-135M-Instruct.Q4_1.gguf

With `--llama-greedy BIN --llama-model F32.gguf` it also recomputes llama.cpp's side (the
file's `prompt_ids`, `greedy_48` and `first_position_top5`) with the greedy driver
`Tests/Fixtures/llama_greedy.cpp` (scripts/build-peers.sh builds it as
.build-peers/llama.cpp/bin/llama-greedy, and the F32 model as
.build-peers/models/SmolLM2-135M-Instruct.F32.gguf).

Needs torch, transformers and gguf (`make peers-venv`).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def load(gguf):
    folder, name = os.path.dirname(os.path.abspath(gguf)), os.path.basename(gguf)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32,
                                                 attn_implementation="eager")
    return tokenizer, model.eval()


@torch.no_grad()
def measure(tokenizer, model, text, steps=48):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    tokens = torch.tensor([ids])
    out = model(input_ids=tokens, use_cache=True)
    first = out.logits[0, -1]
    top = torch.topk(first, 5)
    greedy = []
    logits, cache = out.logits[0, -1], out.past_key_values
    for _ in range(steps):
        token = int(torch.argmax(logits))   # the first maximum: the lowest id on ties
        greedy.append(token)
        out = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
        logits, cache = out.logits[0, -1], out.past_key_values
    return {
        "prompt_ids": ids,
        "greedy_48": greedy,
        "first_position_top5_pytorch": [[int(i), float(v)] for v, i in zip(top.values, top.indices)],
    }


def llama_side(binary, model, text):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(text)
    try:
        out = subprocess.run([binary, model, f.name, "48"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    return json.loads(out.strip().splitlines()[-1])


def check_llama(reference, binary, model, tolerance):
    failed = False
    for name, theirs in reference["prompts"].items():
        mine = llama_side(binary, model, theirs["text"])
        same_ids = mine["prompt_ids"] == theirs["prompt_ids"]
        agree = next((i for i, (a, b) in enumerate(zip(mine["greedy"], theirs["greedy_48"])) if a != b), 48)
        ids_top = [i for i, _ in mine["first_position_top5"]] == [i for i, _ in theirs["first_position_top5"]]
        worst = max(abs(a[1] - b[1]) for a, b in zip(mine["first_position_top5"], theirs["first_position_top5"]))
        ok = same_ids and agree == 48 and ids_top and worst <= tolerance
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} llama.cpp {name}: prompt ids {'same' if same_ids else 'DIFFER'}, "
              f"greedy agrees for {agree}/48 tokens, top-5 ids {'same' if ids_top else 'DIFFER'}, "
              f"logits within {worst:.1e} of the file's llama.cpp figures")
    return failed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["check", "print"])
    parser.add_argument("reference", help="smollm2_reference.json (its prompts are used)")
    parser.add_argument("gguf", help="SmolLM2-135M-Instruct GGUF file")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="check: largest |logit difference| of the top 5")
    parser.add_argument("--llama-greedy", help="check: the greedy driver built from llama_greedy.cpp")
    parser.add_argument("--llama-model", help="check: the F32 GGUF for the llama.cpp side")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    with open(args.reference) as f:
        reference = json.load(f)
    tokenizer, model = load(args.gguf)
    import transformers
    ours = {name: measure(tokenizer, model, p["text"]) for name, p in reference["prompts"].items()}
    if args.action == "print":
        print(json.dumps({"tool": f"PyTorch {torch.__version__} + transformers {transformers.__version__}",
                          "prompts": ours}, indent=1))
        return
    failed = False
    for name, mine in ours.items():
        theirs = reference["prompts"][name]
        same_ids = mine["prompt_ids"] == theirs["prompt_ids"]
        agree = next((i for i, (a, b) in enumerate(zip(mine["greedy_48"], theirs["greedy_48"])) if a != b), 48)
        ids_top = [i for i, _ in mine["first_position_top5_pytorch"]] == [i for i, _ in theirs["first_position_top5_pytorch"]]
        worst = max(abs(a[1] - b[1]) for a, b in zip(mine["first_position_top5_pytorch"], theirs["first_position_top5_pytorch"]))
        worst_llamacpp = max(abs(a[1] - b[1]) for a, b in zip(mine["first_position_top5_pytorch"], theirs["first_position_top5"]))
        ok = same_ids and agree == 48 and ids_top and worst <= args.tolerance
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: prompt ids {'same' if same_ids else 'DIFFER'}, "
              f"greedy agrees for {agree}/48 tokens, top-5 ids {'same' if ids_top else 'DIFFER'}, "
              f"logits within {worst:.1e} of the file's PyTorch figures and {worst_llamacpp:.1e} of llama.cpp's")
    if args.llama_greedy:
        failed |= check_llama(reference, args.llama_greedy, args.llama_model or args.gguf, args.tolerance)
    print(f"PyTorch {torch.__version__}, transformers {transformers.__version__}; tolerance {args.tolerance:g}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
