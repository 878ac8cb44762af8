#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/, ignored by
git) from the committed fixtures, so every run starts from real inputs.

    python3 scripts/fuzz/seed.py

Standard library only. Idempotent: files are named by a hash of their
content.
"""

import hashlib
import json
import pathlib
import struct

REPO = pathlib.Path(__file__).resolve().parents[2]
FIX = REPO / "crates" / "reward" / "tests" / "fixtures"
ENV_FIX = REPO / "crates" / "env" / "tests" / "fixtures"
CORPUS = REPO / "fuzz" / "corpus"


def jsonl(path):
    out = []
    with open(path, encoding="utf-8", errors="surrogatepass") as f:
        for line in f:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def put(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main():
    # Episodes of the bank env (examples/bank): a task/seed byte, then
    # replies split by \x01 (\x02 first: a reply cut by a length limit).
    def call(name, args):
        return f'<think>Look it up.</think>\n<tool_call>\n[{{"name": "{name}", "arguments": {args}}}]\n</tool_call>'
    for head, replies in [
        (0, [call("find_account", '{"owner": "alice"}'), call("withdraw_all", '{"account_id": "cedar"}'),
             "<think>Done.</think>\nDone."]),
        (9, [call("withdraw", '{"account_id": "x", "amount": 0}'), call("steal", "{}"),
             '<think>x</think><tool_call>[{"name": "find_account"']),
        (3, [call("find_account", '{"owner": "bob"}') + "<|im_end|>",
             '\x02<think>part</think>\n<tool_call>\n[{"name": "close_account", "arguments": {"account_id": "ma']),
    ]:
        put("multi_turn_env", bytes([head]) + "\x01".join(replies).encode())
    # Model directories' config.json (the tiny transformers fixtures).
    for cfg in sorted((REPO / "crates" / "model" / "tests" / "fixtures").glob("*/config.json")):
        put("model_config", cfg.read_bytes())
    # Weights files: small ones of every dtype the reader takes (f32, bf16,
    # f16, f64; scalar and empty shapes; metadata) and one it refuses
    # (i64); the fixtures' own are past the 4 KB the runs mutate.
    def safetensors(tensors, meta=None):
        header, data = {}, b""
        for name, (dtype, shape, raw) in tensors.items():
            header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
            data += raw
        if meta:
            header["__metadata__"] = meta
        h = json.dumps(header).encode()
        return struct.pack("<Q", len(h)) + h + data
    put("safetensors_file", safetensors({"a": ("F32", [2, 3], struct.pack("<6f", *range(6)))}))
    put("safetensors_file", safetensors({"w": ("BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
                                         "h": ("F16", [1], b"\x00\x3c"),
                                         "d": ("F64", [1], struct.pack("<d", 1.5))}, {"format": "pt"}))
    put("safetensors_file", safetensors({"x": ("F32", [1], struct.pack("<f", 2.0)), "y": ("F32", [0], b""),
                                         "z": ("F32", [], struct.pack("<f", 3.0))}))
    put("safetensors_file", safetensors({"i": ("I64", [1], struct.pack("<q", 5))}))
    tooln1 = jsonl(FIX / "tooln1_parity.jsonl")
    decode = jsonl(FIX / "bfcl" / "decode.jsonl")
    toolace = json.loads((ENV_FIX / "toolace_sample.json").read_text())
    xlam = json.loads((ENV_FIX / "xlam_sample.json").read_text())
    # Tool parameter schemas of every dialect: BFCL's functions, xLAM's
    # per-parameter maps, and hand-written JSON Schema roots.
    for path in sorted((FIX / "bfcl").glob("BFCL_v4_*.json"))[:4]:
        for line in path.read_text().splitlines()[:5]:
            for f in json.loads(line).get("function", []):
                put("tool_schema", json.dumps(f.get("parameters")))
    for record in xlam:
        try:
            tools = json.loads(record["tools"]) if isinstance(record["tools"], str) else record["tools"]
            for t in tools:
                put("tool_schema", json.dumps(t.get("parameters")))
        except (ValueError, TypeError, KeyError, AttributeError):
            pass  # the sample's broken records, on purpose
    for schema in [
        {"additionalProperties": {"type": "integer"}},
        {"$ref": "#/$defs/A", "$defs": {"A": {"type": "object", "properties": {"n": {"type": "integer"}}}}},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
         "properties": {"a": {"type": "array", "items": [{"type": "integer"}], "additionalItems": False}}},
        {"type": ["object", "null"], "required": ["a"], "properties": {"a": {"type": "Optional[List[int]]"}}},
        {"type": "dict", "properties": {"x": {"type": "tuple", "items": {"type": "float"}, "description": None}}},
    ]:
        put("tool_schema", json.dumps(schema))

    ace = FIX / "acebench"
    for line in jsonl(ace / "verdicts.jsonl")[::5]:
        put("acebench", "\n" + line["reply"])
    for path in sorted((ace / "data_en").glob("data_*.json"))[:4]:
        answers = (ace / "data_en" / "possible_answer" / path.name).read_text().splitlines()
        for q, a in list(zip(path.read_text().splitlines(), answers))[:3]:
            case = {"function": json.loads(q)["function"], "ground_truth": json.loads(a)["ground_truth"]}
            put("acebench", json.dumps(case) + "\n[f(a='x')]")
    ab = ENV_FIX / "apibank" / "verdicts.jsonl"
    for i, line in enumerate(jsonl(ab)[::7]):
        put("api_bank", bytes([i % 256]) + line["r"].encode("utf-8", "surrogatepass"))
    for case in tooln1:
        put("score_completion", case["ground_truth"] + "\n" + case["completion"])
    for case in decode:
        put("bfcl_decode", case["text"])
        put("pycall", case["text"])
    for record in toolace:
        for turn in record.get("conversations", []):
            if turn.get("from") == "assistant":
                put("pycall", turn.get("value", ""))
        put("dataset_records", json.dumps(record))
    for record in xlam:
        put("dataset_records", json.dumps(record))
    for i in range(0, len(tooln1), 7):
        lines = [json.dumps({"id": c["id"], "completion": c["completion"], "ground_truth": c["ground_truth"]})
                 for c in tooln1[i:i + 7]]
        put("jsonl_readers", "\n".join(lines) + "\n")
        put("fast_readers", "\n".join(lines) + "\n")
    for case in tooln1[::11]:
        put("fast_readers", case["ground_truth"])
        put("fast_readers", json.dumps(case["ground_truth"], ensure_ascii=False))
    # Strings with escapes of their own (read inside the literals) and
    # payloads cut off at every few bytes (the script's JSON error).
    tricky = [{"name": "f", "arguments": {"q": 'a"b\\c', "é": ["😀", "x\ny", "/"], "n": [1, None]}},
              {"name": "g\u00e9", "arguments": {}}]
    for ascii_ in (True, False):
        payload = json.dumps(tricky, ensure_ascii=ascii_)
        lines = [json.dumps({"id": i, "completion": f"<think>t</think><tool_call>\n{payload[:cut]}\n</tool_call>",
                             "ground_truth": json.dumps(tricky, ensure_ascii=not ascii_)}, ensure_ascii=False)
                 for i, cut in enumerate(range(0, len(payload) + 1, 7))]
        put("fast_readers", "\n".join(lines) + "\n")
        put("fast_readers", json.dumps(payload))
    # The one-pass readers' shortcuts: short decimals of every length (and
    # replies spelling them otherwise), objects around the insertion-sort
    # limit of 12 members (keys out of order, one repeated), a payload that
    # is its ground truth's text with other whitespace (`\n`, `\t`, `\r`
    # escapes in the literal), ground truths repeated on the next line but
    # for their last bytes, and HTML-safe escapes of the tags.
    floats = ["0.5", "53.59", "1.25", "-0.001", "123456789.123456", "0.30000000000000004", "1e-07", "2.5E+3",
              "9007199254740993.0", "1.7976931348623157e308"]
    for width in (11, 12, 13, 14):
        members = ", ".join(f'"k{(5 * i) % width:02d}": {floats[i % len(floats)]}' for i in range(width))
        truth = f'[{{"name": "f", "arguments": {{{members}, "k00": "again"}}}}]'
        spaced = truth.replace(", ", ",\n  ").replace(": ", ":\t")
        respelled = truth.replace("0.5", "0.50").replace("1e-07", "1E-7").replace("53.59", "5359e-2")
        lines = [json.dumps({"id": i, "completion": f"<think>t</think><tool_call>{reply}</tool_call>",
                             "ground_truth": gt})
                 for i, (reply, gt) in enumerate([(truth, truth), (spaced, truth), (respelled, truth),
                                                  (truth, truth[:-2] + " }]"), (f" \r\n{truth}\t", truth)])]
        html_safe = json.dumps({"id": 9, "completion": f"<think>t</think><tool_call>{truth}</tool_call>",
                                "ground_truth": truth})
        lines.append(html_safe.replace("<", "\\u003c"))
        put("fast_readers", "\n".join(lines) + "\n")
        put("fast_readers", json.dumps(truth))
    put("jsonl_readers", '{"id": "simple_python_0", "completion": "<tool_call>[]</tool_call>", "functions": [], '
                         '"possible_answer": []}\n[1, "x", []]\n\n{"id": "a", "completion": {"tool_calls": []}}\n')
    for cfg in ["[grpo]\ngroup_size = 5\ntemperature = 0.7\n[run]\nseed = 3\n",
                "@grpo.kl_coef=0.001\n@sft.steps=10\n[model]\ndtype = \"f32\"\n",
                '{"phase": "grpo", "step": 20, "data_position": 640, "seed": 0, "optimizer_steps": 20, "finished": false}']:
        put("train_config", cfg)
    call = {"type": "function", "function": {"name": "f", "arguments": "{\"x\": 1}"}}
    for m in [
        {"role": "assistant", "reasoning_content": "r", "content": "", "tool_calls": [call]},
        {"role": "assistant", "tool_calls": [{"name": "g", "arguments": {"a": [1, {"b": None}]}}]},
        [{"role": "user", "content": "q"}, {"role": "assistant", "content": [{"type": "text", "text": "<think>t</think>"}]}],
        {"role": "assistant", "tool_calls": [{"function": {"name": "h", "arguments": ""}}]},
    ]:
        put("completion_message", json.dumps(m))
    for target in sorted(p.name for p in CORPUS.iterdir()):
        print(f"{target}: {len(list((CORPUS / target).iterdir()))} seeds")


if __name__ == "__main__":
    main()
