#!/usr/bin/env python3
"""One training step of a tiny Llama in PyTorch: the reference `Tests/Fixtures/tiny_llama_train`.

The Swift training code is checked against these files (TrainingTests): logits, both losses,
every gradient and the parameters after one AdamW step. This script computes them with
PyTorch and transformers' LlamaForCausalLM (fp32, eager attention) from the model in the
folder (`config.json`, `model.safetensors`) and the batch and settings in its
`reference.json`.

    # regenerate the reference files from the folder's model and batch
    python Tests/Fixtures/tiny_llama_train.py write Tests/Fixtures/tiny_llama_train
    # recompute everything and compare with the files as they are (exit 1 if they differ)
    python Tests/Fixtures/tiny_llama_train.py check Tests/Fixtures/tiny_llama_train
    # a new random model (vocab 320, hidden 64, 2 layers, 4 heads, 2 KV heads, FFN 160)
    python Tests/Fixtures/tiny_llama_train.py init DIR --seed 7

Needs torch, transformers and safetensors (`make peers-venv` installs them into
.build-peers/venv). The loss, as reference.json states it:
    logp[b,t] = log_softmax(logits[b,t])[input_ids[b,t+1]] for t in 0..T-2
    ce_mask = token_weights != 0
    ce = -sum(logp * ce_mask) / sum(ce_mask)
    pg = -sum(logp * token_weights) / sum(ce_mask)
    total = ce + pg
"""

import argparse
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM


def load_model(folder):
    config = LlamaConfig.from_pretrained(folder)
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config)
    state = load_file(os.path.join(folder, "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    # Tied embeddings: the checkpoint has no lm_head.weight.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        sys.exit(f"{folder}/model.safetensors: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    return model.float().train()


def losses(logits, input_ids, weights):
    logp_all = torch.log_softmax(logits[:, :-1, :], dim=-1)
    logp = logp_all.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = (weights != 0).to(logp.dtype)
    ce = -(logp * mask).sum() / mask.sum()
    pg = -(logp * weights).sum() / mask.sum()
    return ce, pg


def compute(folder, step_grads=None):
    """Logits, losses, gradients, norms and the parameters after one AdamW step (taken with
    `step_grads` when given: on its first step AdamW moves a weight by about lr*g/(|g|+eps),
    so a gradient near eps turns a last-bit difference into a visible one)."""
    with open(os.path.join(folder, "reference.json")) as f:
        ref = json.load(f)
    torch.manual_seed(0)
    model = load_model(folder)
    input_ids = torch.tensor(ref["input_ids"], dtype=torch.long)
    attention_mask = torch.tensor(ref["attention_mask"], dtype=torch.long)
    weights = torch.tensor(ref["token_weights"], dtype=torch.float32)
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    ce, pg = losses(logits, input_ids, weights)
    total = ce + pg
    total.backward()

    named = {n: p for n, p in model.named_parameters() if n != "lm_head.weight"}
    grads = {n: p.grad.detach().clone() for n, p in named.items()}
    norms = {n: float(g.double().norm()) for n, g in grads.items()}
    total_norm = math.sqrt(sum(v * v for v in norms.values()))

    if step_grads is not None:
        for n, p in named.items():
            p.grad = step_grads[n].clone()
    a = ref["adamw"]
    decay = [p for n, p in named.items() if p.dim() >= 2]
    no_decay = [p for n, p in named.items() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": a["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=a["lr"], betas=tuple(a["betas"]), eps=float(a["eps"]))
    optimizer.step()
    after = {n: p.detach().clone() for n, p in named.items()}
    return ref, {
        "logits": logits.detach().contiguous(),
        "ce": ce.item(), "pg": pg.item(), "total": total.item(),
        "grads": grads, "norms": norms, "total_norm": total_norm, "after": after,
    }


def write(folder):
    ref, out = compute(folder)
    save_file({"logits": out["logits"]}, os.path.join(folder, "logits.safetensors"))
    save_file({n: g.contiguous() for n, g in out["grads"].items()}, os.path.join(folder, "grads.safetensors"))
    save_file({n: p.contiguous() for n, p in out["after"].items()}, os.path.join(folder, "params_after_adamw.safetensors"))
    ref["loss"] = {"ce": out["ce"], "pg": out["pg"], "total": out["total"]}
    ref["grad_norms"] = out["norms"]
    ref["grad_norm_total"] = out["total_norm"]
    import transformers
    ref["tool"] = (f"PyTorch {torch.__version__} + transformers {transformers.__version__} LlamaForCausalLM "
                   "(fp32, eager), HF safetensors layout (q/k not permuted; rotate_half RoPE)")
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
    print(f"wrote {folder}: ce {out['ce']:.6f} pg {out['pg']:.6f} grad norm {out['total_norm']:.6f}")


def relative(a, b):
    """Largest |a - b| over the largest |b| (both tensors)."""
    scale = max(float(b.abs().max()), 1e-30)
    return float((a - b).abs().max()) / scale


def check(folder, tolerance):
    stored_logits = load_file(os.path.join(folder, "logits.safetensors"))["logits"]
    stored_grads = load_file(os.path.join(folder, "grads.safetensors"))
    ref, out = compute(folder, step_grads=stored_grads)
    stored_after = load_file(os.path.join(folder, "params_after_adamw.safetensors"))
    mask = torch.tensor(ref["attention_mask"], dtype=torch.bool)
    rows = [("logits (attended positions)", relative(out["logits"][mask], stored_logits[mask]))]
    for key in ("ce", "pg", "total"):
        rows.append((f"loss {key}", abs(out[key] - ref["loss"][key]) / abs(ref["loss"][key])))
    worst_grad = max(relative(out["grads"][n], stored_grads[n]) for n in stored_grads)
    rows.append((f"gradients ({len(stored_grads)} tensors, worst)", worst_grad))
    rows.append(("gradient norm", abs(out["total_norm"] - ref["grad_norm_total"]) / ref["grad_norm_total"]))
    worst_after = max(relative(out["after"][n], stored_after[n]) for n in stored_after)
    rows.append(("parameters after AdamW on the stored gradients (worst)", worst_after))
    if set(stored_grads) != set(out["grads"]):
        print(f"tensor names differ: {sorted(set(stored_grads) ^ set(out['grads']))}")
        return 1
    failed = False
    for name, err in rows:
        ok = err <= tolerance
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: relative difference {err:.2e}")
    print(f"PyTorch {torch.__version__}; tolerance {tolerance:g}")
    return 1 if failed else 0


def init(folder, seed):
    os.makedirs(folder, exist_ok=True)
    config = LlamaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=128,
        rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).float()
    # Norm weights away from 1 so that their gradients are exercised.
    with torch.no_grad():
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    config.save_pretrained(folder)
    state = {n: p.detach().contiguous() for n, p in model.state_dict().items() if n != "lm_head.weight"}
    save_file(state, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    g = torch.Generator().manual_seed(seed)
    lengths, prompt = [12, 8], [5, 4]
    ids = torch.randint(3, 320, (2, 12), generator=g)
    mask = torch.zeros(2, 12, dtype=torch.long)
    weights = torch.zeros(2, 11)
    for b, n in enumerate(lengths):
        mask[b, :n] = 1
        ids[b, n:] = 2
        weights[b, prompt[b] - 1:n - 1] = torch.randn(n - prompt[b], generator=g) * 0.6 + 0.5
    ref = {
        "input_ids": ids.tolist(), "attention_mask": mask.tolist(), "lengths": lengths, "prompt_len": prompt,
        "token_weights": weights.tolist(),
        "loss_definition": ("logp[b,t] = log_softmax(logits[b,t])[input_ids[b,t+1]] for t in 0..T-2; "
                            "ce_mask = token_weights != 0; ce = -sum(logp*ce_mask)/sum(ce_mask); "
                            "pg = -sum(logp*token_weights)/sum(ce_mask); total = ce + pg"),
        "adamw": {"lr": 0.01, "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1,
                  "decay_applies_to": "tensors with 2 or more dimensions only", "step": 1},
    }
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump(ref, f, indent=2)
    write(folder)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["write", "check", "init"])
    parser.add_argument("folder")
    parser.add_argument("--seed", type=int, default=7, help="init: seed of the random model and batch")
    parser.add_argument("--tolerance", type=float, default=1e-5, help="check: largest relative difference")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.action == "write":
        write(args.folder)
    elif args.action == "init":
        init(args.folder, args.seed)
    else:
        sys.exit(check(args.folder, args.tolerance))


if __name__ == "__main__":
    main()
