#!/usr/bin/python3
"""Exports a checkpoint of tools/train_demo_model.py in the Hugging Face layout r1 loads.

    /usr/bin/python3 tools/export_demo_model.py --checkpoint DIR --out models/r1-demo

Writes config.json (model_type deepseek_v3), generation_config.json, the tokenizer files,
sharded safetensors with model.safetensors.index.json — linear weights FP8 e4m3 with 128x128
weight_scale_inv like R1; norms, router, embedding and lm_head BF16; e_score_correction_bias
F32 — and trainer_logits.safetensors: a few teacher-forced sequences (tokens_i I32) with the
trainer's own logits (logits_i F32 [T, U]) over the used vocabulary columns (vocab_ids I32 [U];
every other column is exactly 0), computed from the exported weights, for the engine's test.
"""
import argparse
import json
import os
import random
import shutil
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_task  # noqa: E402
import train_demo_model as trainer  # noqa: E402
from reference_model import e4m3fn_table, write_safetensors  # noqa: E402

SHARD_BYTES = 40 << 20  # the embedding (41 MB in BF16) gets a shard of its own


def bf16_bytes(t):
    return t.detach().to(torch.bfloat16).contiguous().view(torch.int16).numpy().tobytes()


def fp8_codes(values):
    """e4m3fn codes of values already on the e4m3 grid (from trainer.fp8_quantize)."""
    table = e4m3fn_table()  # code -> value, NaN for 0x7F/0xFF
    codes = {}
    for code in range(256):
        v = float(table[code])
        if v == v and v not in codes and not (v == 0 and code != 0):
            codes[v] = code
    lookup = torch.tensor(sorted(codes))
    idx = torch.searchsorted(lookup, values.flatten().contiguous())
    assert torch.equal(lookup[idx], values.flatten()), "value off the e4m3 grid"
    code_of = torch.tensor([codes[float(v)] for v in lookup], dtype=torch.uint8)
    return code_of[idx].view(values.shape)


def hf_tensors(model):
    """(name, dtype, shape, raw bytes) in checkpoint order, and the weights the engine will see
    (name -> float32 tensor) to load back into the trainer for the reference logits."""
    vocab = model.cfg["vocab_size"]
    out, seen = [], {}

    def linear(name, w):
        values, scale = trainer.fp8_quantize(w.detach().float())
        out.append((name + ".weight", "F8_E4M3", list(w.shape), fp8_codes(values).numpy().tobytes()))
        out.append((name + ".weight_scale_inv", "F32", list(scale.shape), scale.float().numpy().tobytes()))
        return values * trainer.expand_blocks(scale, w.shape)

    def bf16(name, w):
        out.append((name, "BF16", list(w.shape), bf16_bytes(w)))
        return w.detach().to(torch.bfloat16).float()

    def full_rows(compact):
        full = torch.zeros(vocab, compact.shape[1])
        full[model.used_ids] = compact.detach()
        return full

    seen["embed_tokens"] = bf16("model.embed_tokens.weight", full_rows(model.embed_tokens))[model.used_ids]
    for i, layer in enumerate(model.layers):
        p = f"model.layers.{i}."
        seen[f"layers.{i}.input_layernorm.weight"] = bf16(p + "input_layernorm.weight", layer.input_layernorm.weight)
        seen[f"layers.{i}.post_attention_layernorm.weight"] = bf16(p + "post_attention_layernorm.weight",
                                                                   layer.post_attention_layernorm.weight)
        a = layer.self_attn
        for n in ("q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj"):
            seen[f"layers.{i}.self_attn.{n}.weight"] = linear(p + f"self_attn.{n}", getattr(a, n).weight)
        for n in ("q_a_layernorm", "kv_a_layernorm"):
            seen[f"layers.{i}.self_attn.{n}.weight"] = bf16(p + f"self_attn.{n}.weight", getattr(a, n).weight)
        mlp = layer.mlp
        if isinstance(mlp, trainer.MoE):
            seen[f"layers.{i}.mlp.gate"] = bf16(p + "mlp.gate.weight", mlp.gate)
            bias = mlp.e_score_correction_bias.detach().float()
            out.append((p + "mlp.gate.e_score_correction_bias", "F32", list(bias.shape), bias.numpy().tobytes()))
            for kind, stack in (("gate_proj", "w_gate"), ("up_proj", "w_up"), ("down_proj", "w_down")):
                deq = [linear(p + f"mlp.experts.{e}.{kind}", w) for e, w in enumerate(getattr(mlp, stack))]
                seen[f"layers.{i}.mlp.{stack}"] = torch.stack(deq)
            mlp = mlp.shared_experts
            prefix, key = p + "mlp.shared_experts.", f"layers.{i}.mlp.shared_experts."
        else:
            prefix, key = p + "mlp.", f"layers.{i}.mlp."
        for n in ("gate_proj", "up_proj", "down_proj"):
            seen[key + n + ".weight"] = linear(prefix + n, getattr(mlp, n).weight)
    seen["norm.weight"] = bf16("model.norm.weight", model.norm.weight)
    seen["lm_head"] = bf16("lm_head.weight", full_rows(model.lm_head))[model.used_ids]
    return out, seen


def hf_config(cfg, tokenizer):
    config = dict(cfg)
    config.update({
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "attention_bias": False,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "bos_token_id": tokenizer.added[demo_task.BOS],
        "eos_token_id": tokenizer.added[demo_task.EOS],
        "initializer_range": 0.02,
        "moe_layer_freq": 1,
        "num_key_value_heads": cfg["num_attention_heads"],
        "num_nextn_predict_layers": 0,
        "ep_size": 1,
        "pretraining_tp": 1,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                "weight_block_size": [128, 128]},
    })
    return config


def write_shards(out_dir, tensors):
    shards, current, size = [], [], 0
    for t in tensors:
        if current and size + len(t[3]) > SHARD_BYTES:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += len(t[3])
    shards.append(current)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(os.path.join(out_dir, name), shard, {"format": "pt"})
        for t in shard:
            weight_map[t[0]] = name
            total += len(t[3])
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


def load_exported_weights(model, seen):
    """Puts the rounded weights into the trainer's model, so its forward is the engine's."""
    with torch.no_grad():
        model.embed_tokens.copy_(seen["embed_tokens"])
        model.lm_head.copy_(seen["lm_head"])
        model.norm.weight.copy_(seen["norm.weight"])
        for i, layer in enumerate(model.layers):
            for name, param in layer.named_parameters():
                param.copy_(seen[f"layers.{i}.{name}"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", required=True, help="directory with model.pt from the trainer")
    ap.add_argument("--out", required=True)
    ap.add_argument("--sequences", type=int, default=3, help="teacher-forced sequences for the engine check")
    args = ap.parse_args()

    torch.set_num_threads(2)
    model, state = trainer.load_model(args.checkpoint)
    model.eval()
    tokenizer = demo_task.Tokenizer()
    os.makedirs(args.out, exist_ok=True)

    tensors, seen = hf_tensors(model)
    write_shards(args.out, tensors)
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(hf_config(model.cfg, tokenizer), f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": tokenizer.added[demo_task.BOS], "eos_token_id": tokenizer.added[demo_task.EOS],
                   "do_sample": True, "temperature": 0.6, "top_p": 0.95}, f, indent=2)
        f.write("\n")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(demo_task.TOKENIZER_DIR, name), os.path.join(args.out, name))

    # Reference logits: the trainer's forward (float32) on the weights exactly as exported.
    load_exported_weights(model, seen)
    row_of = {t: r for r, t in enumerate(model.used_ids.tolist())}
    rng = random.Random(2024)
    refs = [("vocab_ids", "I32", [len(row_of)], model.used_ids.to(torch.int32).numpy().tobytes())]
    for i in range(args.sequences):
        user, _, assistant = demo_task.sample_problem(rng, off_task_share=0.0)
        ids, _ = demo_task.encode_example(tokenizer, user, assistant)
        with torch.no_grad():
            logits = model.used_logits(torch.tensor([[row_of[t] for t in ids]]))[0]
        refs.append((f"tokens_{i}", "I32", [len(ids)], torch.tensor(ids, dtype=torch.int32).numpy().tobytes()))
        refs.append((f"logits_{i}", "F32", list(logits.shape), logits.float().numpy().tobytes()))
    write_safetensors(os.path.join(args.out, "trainer_logits.safetensors"), refs, {"step": str(state["step"])})
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"exported step {state['step']} to {args.out}: {total / 1e6:.1f} MB", flush=True)


if __name__ == "__main__":
    main()
