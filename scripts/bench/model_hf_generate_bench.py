#!/usr/bin/env python3
"""transformers (PyTorch eager) counterpart of
crates/model/examples/bench_generate.rs: same architecture (Qwen2.5-0.5B,
random weights), same prompt lengths / new tokens / measurements, same JSON
lines (`{"impl": "transformers", ...}`).

  /work/ref/venv-torch/bin/python scripts/bench/model_hf_generate_bench.py \
      [--batch-sizes 1,32] [--prompt-len 64] [--new-tokens 32] [--prefill-len 128] \
      [--repeats 3] [--threads N] [--tiny] [--device cpu|cuda] [--dtype f32|bf16|f16]
      [--peak-gbps G]

Greedy, exactly `new-tokens` tokens (eos disabled), no_grad,
attn_implementation="eager" (sdpa gives similar numbers on CPU). Defaults:
f32 on the CPU. On CUDA every timed call ends with torch.cuda.synchronize().
The decode bandwidth figures use the same byte count as bench_generate.rs.
"""

import argparse
import json
import sys
import time

import torch
from transformers import Qwen2Config, Qwen2ForCausalLM


def config(tiny):
    if tiny:
        return Qwen2Config(vocab_size=2048, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                           num_attention_heads=8, num_key_value_heads=2, tie_word_embeddings=True,
                           rope_theta=10000.0, rms_norm_eps=1e-6)
    return Qwen2Config(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                       num_attention_heads=14, num_key_value_heads=2, tie_word_embeddings=True,
                       rope_theta=1e6, rms_norm_eps=1e-6, max_position_embeddings=32768)


DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(repeats, f, device):
    f()
    sync(device)
    xs = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        f()
        sync(device)
        xs.append(time.perf_counter() - t)
    return min(xs)  # best of `repeats`: least disturbed by other processes


def decode_step_bytes(cfg, n_params, elem_bytes, batch, positions):
    """Weights read once per decode step (an untied input embedding is only
    gathered, so it is left out) plus the KV cache; as in bench_generate.rs.
    `n_params` counts a tied embedding once, as the model's parameters do."""
    weights = n_params - (0 if cfg.tie_word_embeddings else cfg.vocab_size * cfg.hidden_size)
    kv = cfg.num_key_value_heads * (cfg.hidden_size // cfg.num_attention_heads)
    cache = cfg.num_hidden_layers * 2 * kv * positions * batch
    return (weights + cache) * elem_bytes


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch-sizes", default="1,32")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--prefill-len", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--attn", default="eager")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="f32", choices=sorted(DTYPES))
    ap.add_argument("--peak-gbps", type=float, default=None)
    a = ap.parse_args()
    device = torch.device(a.device)
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = config(a.tiny)
    cfg.eos_token_id = None
    t = time.perf_counter()
    # Initialised where it runs: a random 0.5B model takes ~30 s to
    # initialise on the CPU of a GPU machine, which device time pays for.
    with device:
        model = Qwen2ForCausalLM._from_config(cfg, attn_implementation=a.attn, dtype=DTYPES[a.dtype])
    model = model.to(device).eval()
    n_params = sum(p.numel() for p in model.parameters())
    print(f"transformers: {n_params} parameters, init "
          f"{time.perf_counter() - t:.1f}s, {torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{device} {a.dtype}", file=sys.stderr)
    g = torch.Generator().manual_seed(1)

    def prefill(ids):
        # Last-position logits only, as generate's prefill and the candle side do.
        with torch.no_grad():
            model(ids, attention_mask=torch.ones_like(ids), use_cache=True, logits_to_keep=1)

    ids = torch.randint(0, cfg.vocab_size, (1, a.prefill_len), generator=g).to(device)
    secs = timed(a.repeats, lambda: prefill(ids), device)
    print(json.dumps({"impl": "transformers", "metric": "prefill", "batch": 1, "tokens": a.prefill_len,
                      "seconds": round(secs, 4), "tokens_per_s": round(a.prefill_len / secs, 2)}))
    for b in [int(x) for x in a.batch_sizes.split(",") if x]:
        ids = torch.randint(0, cfg.vocab_size, (b, a.prompt_len), generator=g).to(device)
        mask = torch.ones_like(ids)

        def gen(n):
            def f():
                with torch.no_grad():
                    out = model.generate(ids, attention_mask=mask, do_sample=False, max_new_tokens=n,
                                         min_new_tokens=n, pad_token_id=0, eos_token_id=None)
                assert out.shape[1] == a.prompt_len + n
            return f

        # One new token = prefill + first sample; the difference is the decode loop.
        t_first = timed(a.repeats, gen(1), device)
        t_gen = timed(a.repeats, gen(a.new_tokens), device)
        decode = b * (a.new_tokens - 1) / (t_gen - t_first) if t_gen > t_first else None
        rec = {"impl": "transformers", "metric": "generate", "batch": b, "prompt_len": a.prompt_len,
               "new_tokens": a.new_tokens, "seconds": round(t_gen, 4),
               "first_token_seconds": round(t_first, 4),
               "tokens_per_s": round(b * a.new_tokens / t_gen, 2),
               "decode_tokens_per_s": None if decode is None else round(decode, 2)}
        if decode is not None:
            elem = torch.tensor([], dtype=DTYPES[a.dtype]).element_size()
            step_bytes = decode_step_bytes(cfg, n_params, elem, b, a.prompt_len + a.new_tokens // 2)
            gbps = step_bytes * decode / b / 1e9
            rec["decode_step_bytes"] = step_bytes
            rec["decode_gb_per_s"] = round(gbps, 2)
            if a.peak_gbps:
                rec["bandwidth_fraction"] = round(gbps / a.peak_gbps, 3)
        print(json.dumps(rec))


if __name__ == "__main__":
    main()
