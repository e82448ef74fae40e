"""Models by the names people's tools use (issue: Hugging Face ids, GGUF repos by quant, Ollama names, offline cache).

Everything runs against a real HTTP server on 127.0.0.1 (tests/hub_server.py) with the real huggingface_hub client
pointed at it through HF_ENDPOINT, and urllib for the Ollama registry: no mocked client. The GGUF files are written
with llama.cpp's gguf package; the server counts the bytes it sends, so "reads only the header" is measured.
"""

import functools
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from gguf import GGMLQuantizationType as T
from gguf import GGUFReader, GGUFValueType, GGUFWriter

from advisor.cli import main
from advisor.errors import ProfileError
from advisor.sources import gguf_header, hub, ollama_store
from hub_server import HubServer, write_safetensors

CONFIGS = Path(__file__).parent / "data" / "configs"
TOKEN = "hf_test_token_0123456789"
GPU = ("--gpu", "RTX 4090", "--ram", "64")
MIB = 2**20


def run(*args):
    return CliRunner().invoke(main, list(args))


def fit_json(*args):
    r = run("fit", *args, *GPU, "--json")
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


# ---------------------------------------------------------------- fixture files

def write_gguf(path: Path, vocab=100, hidden=64, layers=2, tensors=None, file_type=15, tokens=False, name="tiny",
               extra=None):
    """A llama GGUF: real metadata keys, optionally a full tokenizer (vocab strings, scores, types, merges)."""
    w = GGUFWriter(str(path), "llama")
    w.add_name(name)
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_feed_forward_length(128)
    w.add_context_length(8192)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    if file_type is not None:
        w.add_file_type(file_type)
    if tokens:
        w.add_tokenizer_model("gpt2")
        w.add_token_list([f"tok{i}" for i in range(vocab)])
        w.add_token_scores([float(i) for i in range(vocab)])
        w.add_token_types([1] * vocab)
        w.add_token_merges([f"t{i} o{i}" for i in range(vocab)])
    for key, value in (extra or {}).items():
        w.add_key_value(key, value[0], value[1])
    for tname, array, raw in (tensors if tensors is not None else tiny_tensors(vocab, hidden, layers)):
        w.add_tensor(tname, array, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tiny_tensors(vocab=100, hidden=64, layers=2, output_q8=True):
    out = [("token_embd.weight", np.zeros((vocab, hidden), dtype=np.float16), None)]
    for i in range(layers):
        out += [(f"blk.{i}.attn_q.weight", np.zeros((hidden, hidden // 32 * 18), dtype=np.uint8), T.Q4_0),
                (f"blk.{i}.attn_k.weight", np.zeros((32, hidden), dtype=np.float16), None),
                (f"blk.{i}.attn_v.weight", np.zeros((32, hidden), dtype=np.float16), None),
                (f"blk.{i}.attn_output.weight", np.zeros((hidden, hidden), dtype=np.float16), None),
                (f"blk.{i}.ffn_up.weight", np.zeros((128, hidden), dtype=np.float16), None),
                (f"blk.{i}.ffn_gate.weight", np.zeros((128, hidden), dtype=np.float16), None),
                (f"blk.{i}.ffn_down.weight", np.zeros((hidden, 128), dtype=np.float16), None),
                (f"blk.{i}.attn_norm.weight", np.zeros(hidden, dtype=np.float32), None),
                (f"blk.{i}.ffn_norm.weight", np.zeros(hidden, dtype=np.float32), None)]
    out.append(("output_norm.weight", np.zeros(hidden, dtype=np.float32), None))
    if output_q8:
        out.append(("output.weight", np.zeros((vocab, hidden // 32 * 34), dtype=np.uint8), T.Q8_0))
    return out


def tensor_bytes(*paths) -> int:
    """The tensor bytes as llama.cpp's own reader (gguf.GGUFReader) counts them: the reference."""
    return sum(_reader_bytes(p) for p in paths)


@functools.lru_cache(maxsize=None)
def _reader_bytes(path: Path) -> int:
    return sum(int(t.n_bytes) for t in GGUFReader(str(path)).tensors)


def written_bytes(tensors) -> int:
    """The tensor data handed to GGUFWriter (packed bytes for quantized types): what the file stores."""
    return sum(array.nbytes for _, array, _ in tensors)


TINY_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
               "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "vocab_size": 128, "max_position_embeddings": 4096, "tie_word_embeddings": False,
               "torch_dtype": "bfloat16", "rms_norm_eps": 1e-5}


def tiny_safetensors_tensors(extra=None):
    h, kv, inter, vocab = 64, 32, 128, 128
    t = {"model.embed_tokens.weight": (vocab, h), "model.norm.weight": (h,), "lm_head.weight": (vocab, h)}
    for i in range(2):
        p = f"model.layers.{i}."
        t.update({p + "self_attn.q_proj.weight": (h, h), p + "self_attn.k_proj.weight": (kv, h),
                  p + "self_attn.v_proj.weight": (kv, h), p + "self_attn.o_proj.weight": (h, h),
                  p + "mlp.gate_proj.weight": (inter, h), p + "mlp.up_proj.weight": (inter, h),
                  p + "mlp.down_proj.weight": (h, inter), p + "input_layernorm.weight": (h,),
                  p + "post_attention_layernorm.weight": (h,)})
    t.update(extra or {})
    return t


def sharded(folder: Path, tensors: dict) -> dict:
    """Two safetensors shards and their index: {repo path: file}."""
    names = list(tensors)
    half = len(names) // 2
    files, weight_map = {}, {}
    for i, chunk in enumerate((names[:half], names[half:]), start=1):
        fname = f"model-{i:05d}-of-00002.safetensors"
        files[fname] = write_safetensors(folder / fname, {n: tensors[n] for n in chunk})
        weight_map.update({n: fname for n in chunk})
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    return {"model.safetensors.index.json": json.dumps(index).encode(), **files}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hubfiles")
    out = {}
    # a GGUF of realistic shape: a 32000-token tokenizer in the header, 25 MB of tensor data behind it
    out["big"] = write_gguf(d / "tiny-Q4_K_M.gguf", vocab=32000, hidden=256, tokens=True, name="Tiny")
    out["big_bytes"] = written_bytes(tiny_tensors(32000, 256))  # GGUFReader takes seconds over this vocabulary
    out["medium"] = write_gguf(d / "medium.gguf", vocab=3000, tokens=True)
    whole = tiny_tensors()
    out["q8_parts"] = [write_gguf(d / "tiny-Q8_0-00001-of-00002.gguf", tensors=whole[:10], file_type=7,
                                  extra={"split.count": (2, GGUFValueType.UINT16)}),
                       write_gguf(d / "tiny-Q8_0-00002-of-00002.gguf", tensors=whole[10:], file_type=7)]
    out["mmproj"] = write_gguf(d / "mmproj-tiny-F16.gguf", file_type=1)
    out["small"] = write_gguf(d / "small-Q4_K_M.gguf")
    (d / "tiny").mkdir()
    out["tiny_shards"] = sharded(d / "tiny", tiny_safetensors_tensors())
    (d / "extra").mkdir()
    out["extra_shards"] = sharded(d / "extra", tiny_safetensors_tensors({"model.vision.big.weight": (4096, 64)}))
    return out


@pytest.fixture(scope="module")
def server(files):
    s = HubServer()
    qwen = (CONFIGS / "qwen3-4b.json").read_bytes()
    s.add_repo("acme/qwen3-4b", {"config.json": qwen, "README.md": b"# qwen"})
    s.add_repo("acme/gpt-oss-20b", {"config.json": (CONFIGS / "gpt-oss-20b.json").read_bytes()})
    s.add_repo("acme/tiny", {"config.json": json.dumps(TINY_CONFIG).encode(), **files["tiny_shards"]}, page_size=2)
    s.add_repo("acme/tiny-extra", {"config.json": json.dumps(TINY_CONFIG).encode(), **files["extra_shards"]})
    s.add_repo("acme/tiny-GGUF", {
        "README.md": b"# GGUF",
        "mmproj-tiny-F16.gguf": files["mmproj"],
        "tiny-Q4_K_M.gguf": files["big"],
        "Q8_0/tiny-Q8_0-00001-of-00002.gguf": files["q8_parts"][0],
        "Q8_0/tiny-Q8_0-00002-of-00002.gguf": files["q8_parts"][1],
    })
    s.add_repo("gated/secret", {"config.json": qwen}, token=TOKEN)
    s.renamed["acme/old-qwen"] = "acme/qwen3-4b"
    s.add_ollama("library/tiny:q4", [("application/vnd.ollama.image.model", files["big"]),
                                     ("application/vnd.ollama.image.template", b"{{ .Prompt }}")])
    s.start()
    yield s
    s.stop()


@pytest.fixture
def env(server, monkeypatch, tmp_path):
    """HF_ENDPOINT at the local server; Hugging Face and Ollama caches inside this test's tmp_path."""
    for name in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE",
                 "HF_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("ADVISOR_OLLAMA_REGISTRY", server.url)
    monkeypatch.setenv("OLLAMA_MODELS", str(tmp_path / "ollama"))
    server.sent.clear()
    server.requests.clear()
    return server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def comparable(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k not in ("model", "notes", "source")}


# ---------------------------------------------------------------- Hugging Face ids

def test_a_hub_id_gives_the_numbers_of_its_config_json(env, tmp_path):
    local = tmp_path / "qwen3-4b"
    local.mkdir()
    shutil.copy(CONFIGS / "qwen3-4b.json", local / "config.json")
    for args in ((), ("--context", "8192", "--kv-type", "q8_0")):
        remote = fit_json("acme/qwen3-4b", *args)
        assert comparable(remote) == comparable(fit_json(str(local / "config.json"), *args))
    assert remote["model"] == "qwen3-4b"
    # huggingface_hub's normal cache holds the config, and advisor's record the answer
    assert list((tmp_path / "hf" / "hub").glob("models--acme--qwen3-4b/snapshots/*/config.json"))
    assert hub.read_record("hf:acme/qwen3-4b@main")["kind"] == "config"


def test_the_config_quantization_config_gives_the_native_format(env):
    local = fit_json(str(CONFIGS / "gpt-oss-20b.json"))
    remote = fit_json("acme/gpt-oss-20b")
    assert remote["quant"] == local["quant"] == "MXFP4" and comparable(remote) == comparable(local)


def test_safetensors_headers_give_the_exact_parameter_count(env):
    r = run("fit", "acme/tiny", *GPU, "--json")  # two shards, an index, a tree listed over several pages
    assert r.exit_code == 0, r.output
    assert "parameters" not in r.stderr, r.stderr
    record = hub.read_record("hf:acme/tiny@main")
    expected = sum(int(np.prod(s)) for s in tiny_safetensors_tensors().values())
    assert record["safetensors"] == {"parameters": {"BF16": expected}, "shards": 2}
    # only the headers were read: each shard is read through a range request of 100 kB (bytes=0-100000)
    assert all(0 < env.bytes_sent(f"acme/tiny/model-0000{i}-of-00002.safetensors") <= 100_001 for i in (1, 2)), env.sent
    extra = run("fit", "acme/tiny-extra", *GPU, "--json")
    assert extra.exit_code == 0 and "the safetensors headers hold" in extra.stderr, extra.stderr


def test_a_revision_and_a_renamed_repo(env):
    base = fit_json("acme/qwen3-4b")
    assert comparable(fit_json("acme/qwen3-4b@0123456789abcdef0123456789abcdef01234567")) == comparable(base)
    assert comparable(fit_json("acme/old-qwen")) == comparable(base)  # the server answers 307 to the new name
    r = run("fit", "acme/qwen3-4b@nope", *GPU)
    assert r.exit_code == 2 and "no revision 'nope'" in r.output and r.output.count("\n") == 1, r.output


def test_a_gated_repo_says_to_log_in_and_a_token_opens_it(env, monkeypatch):
    r = run("fit", "gated/secret", *GPU)
    assert r.exit_code == 1 and r.output.count("\n") == 1, r.output
    assert "HF_TOKEN" in r.output and "log in" in r.output and "Traceback" not in r.output
    assert isinstance(r.exception, SystemExit)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert fit_json("gated/secret")["weights_bytes"] > 0


def test_a_missing_repo_is_a_usage_error(env):
    r = run("fit", "acme/no-such-model", *GPU)
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "404" in r.output, r.output


def test_a_shipped_alias_wins_over_the_hub(env):
    r = run("fit", "Qwen/Qwen3-30B-A3B", *GPU, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["model"] == "qwen3-30b-a3b"
    assert env.requests == []  # never asked the Hub


def test_an_existing_local_path_wins(env, tmp_path, monkeypatch):
    folder = tmp_path / "acme" / "qwen3-4b"
    folder.mkdir(parents=True)
    cfg = json.loads((CONFIGS / "qwen3-4b.json").read_text())
    cfg["max_position_embeddings"] = 1024
    (folder / "config.json").write_text(json.dumps(cfg))
    monkeypatch.chdir(tmp_path)
    assert fit_json("acme/qwen3-4b")["model_max_context"] == 1024 and env.requests == []


# ---------------------------------------------------------------- GGUF repos by quant

def test_a_gguf_quant_reads_only_the_header(env, files):
    doc = fit_json("acme/tiny-GGUF:Q4_K_M", "--context", "4096")
    assert doc["weights_bytes"] == files["big_bytes"] and doc["quant"] == "Q4_K_M"
    sent = env.bytes_sent("acme/tiny-GGUF/tiny-Q4_K_M.gguf")
    size = files["big"].stat().st_size
    assert 0 < sent <= 4 * MIB and sent < size / 4, (sent, size)
    assert not any(p.endswith("mmproj-tiny-F16.gguf") for _, p, _ in env.requests)
    assert comparable(fit_json(str(files["big"]), "--context", "4096")) == comparable(doc)  # same as the file


def test_quant_spellings_of_llama_cpp_and_ollama(env, files):
    want = files["big_bytes"]
    for name in ("acme/tiny-GGUF:q4_k_m", "hf.co/acme/tiny-GGUF:Q4_K_M", "https://huggingface.co/acme/tiny-GGUF:Q4_K_M"):
        assert fit_json(name)["weights_bytes"] == want, name


def test_split_gguf_parts_are_summed(env, files):
    doc = fit_json("acme/tiny-GGUF:Q8_0")
    assert doc["weights_bytes"] == tensor_bytes(*files["q8_parts"]) and doc["quant"] == "Q8_0"


def test_no_quant_lists_the_quants_with_sizes(env):
    r = run("fit", "acme/tiny-GGUF", *GPU)
    assert r.exit_code == 2 and r.output.count("\n") == 1, r.output
    assert "Q4_K_M 26 MiB" in r.output and "Q8_0" in r.output and "F16" not in r.output
    r = run("fit", "acme/tiny-GGUF:Q5_K_M", *GPU)
    assert r.exit_code == 2 and "no Q5_K_M file" in r.output and "Q4_K_M (" in r.output, r.output


def test_llama_cpp_selection_rules():
    files = [{"path": p, "size": 10} for p in (
        "mmproj-model-f16.gguf", "model-UD-Q4_K_XL.gguf", "Q8_0/model-Q8_0-00002-of-00002.gguf",
        "Q8_0/model-Q8_0-00001-of-00002.gguf", "model.Q4_K_M.gguf", "model-imatrix-Q4_K_M.gguf")]
    models = [f for f in files if hub.is_model_gguf(f["path"])]
    assert [f["path"] for f in hub.select_quant(models, "q4_k_m")] == ["model.Q4_K_M.gguf"]
    assert [f["path"] for f in hub.select_quant(models, "UD-Q4_K_XL")] == ["model-UD-Q4_K_XL.gguf"]
    assert [f["path"] for f in hub.select_quant(models, "Q8_0")] == ["Q8_0/model-Q8_0-00001-of-00002.gguf",
                                                                     "Q8_0/model-Q8_0-00002-of-00002.gguf"]
    assert hub.select_quant(models, "F16") is None
    assert [(q, n) for q, n, _ in hub.quant_list(models)] == [("Q4_K_XL", 10), ("Q8_0", 20), ("Q4_K_M", 10)]
    assert hub.split_info("a/b-Q2_K-00003-of-00009.gguf") == ("a/b-Q2_K", "Q2_K", 3, 9)


def test_hub_names_parse():
    assert hub.parse_name("Qwen/Qwen3-30B-A3B") == hub.HubRef("Qwen/Qwen3-30B-A3B")
    assert hub.parse_name("unsloth/gpt-oss-120b-GGUF:Q4_K_M").quant == "Q4_K_M"
    ref = hub.parse_name("hf.co/bartowski/X-GGUF:latest")
    assert ref.repo == "bartowski/X-GGUF" and ref.quant is None and ref.explicit
    assert hub.parse_name("org/name@refs/pr/1:Q8_0") == hub.HubRef("org/name", "refs/pr/1", "Q8_0")
    assert hub.parse_name("a/b/c") is None and hub.parse_name("./x") is None and hub.parse_name("gpt-oss:120b") is None
    assert ollama_store.parse_name("gpt-oss:120b") == ollama_store.OllamaRef("registry.ollama.ai", "library",
                                                                             "gpt-oss", "120b")
    assert ollama_store.parse_name("ollama:someone/model").namespace == "someone"
    assert ollama_store.parse_name("ollama:registry.ollama.ai/library/qwen3:8b").tag == "8b"
    assert ollama_store.parse_name("llama-3-8b") is None


# ---------------------------------------------------------------- offline, unreachable, cached

def test_without_network_and_cache_one_line_and_nothing_written(env, monkeypatch, tmp_path):
    assert run("models").exit_code == 0  # the shipped-profile cache exists before the snapshot
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    before = sorted(p for p in tmp_path.rglob("*"))
    for name in ("acme/qwen3-4b", "acme/tiny-GGUF:Q4_K_M"):
        r = run("fit", name, *GPU)
        assert r.exit_code == 1 and r.output.count("\n") == 1 and "cannot reach" in r.output, r.output
        assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_as_a_process_no_network_is_one_line_exit_1(env, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    out = subprocess.run([sys.executable, "-m", "advisor", "fit", "acme/qwen3-4b", *GPU], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1 and out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
    assert out.stderr.startswith("advisor: error: acme/qwen3-4b: cannot reach")


def test_a_fetched_answer_works_offline_and_unreachable(env, monkeypatch):
    online = {n: fit_json(n) for n in ("acme/qwen3-4b", "acme/tiny-GGUF:Q4_K_M")}
    env.requests.clear()
    for name, doc in online.items():
        r = run("fit", name, *GPU, "--json", "--offline")
        assert r.exit_code == 0 and comparable(json.loads(r.stdout)) == comparable(doc), r.output
        assert "offline: the answer cached on" in r.stderr
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert comparable(fit_json("acme/qwen3-4b")) == comparable(online["acme/qwen3-4b"])
    assert env.requests == []  # --offline and HF_HUB_OFFLINE: not one request
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    r = run("fit", "acme/tiny-GGUF:Q4_K_M", *GPU, "--json")
    assert r.exit_code == 0 and "cannot reach" in r.stderr and "cached on" in r.stderr, r.output
    assert comparable(json.loads(r.stdout)) == comparable(online["acme/tiny-GGUF:Q4_K_M"])


def test_offline_from_the_hugging_face_cache_alone(env):
    """A config that huggingface_hub's cache holds (another tool downloaded it) answers offline, said so."""
    online = fit_json("acme/qwen3-4b")
    shutil.rmtree(hub.records_dir())
    r = run("fit", "acme/qwen3-4b", *GPU, "--json", "--offline")
    assert r.exit_code == 0 and "from the Hugging Face cache" in r.stderr, r.output
    assert comparable(json.loads(r.stdout)) == comparable(online)


def test_a_name_found_nowhere_suggests_profiles(env, monkeypatch):
    r = run("fit", "lama3:8b", *GPU)  # Ollama's registry (the local server) has no such model
    assert r.exit_code == 2 and "did you mean" in r.output and "llama" in r.output, r.output
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    r = run("fit", "meta-llama/Meta-Llama-3-8X", *GPU)
    assert r.exit_code == 1 and "cannot reach" in r.output and "meta-llama-3-8b" in r.output, r.output
    assert r.output.count("\n") == 1


def test_a_damaged_record_counts_as_absent(env):
    fit_json("acme/tiny-GGUF:Q8_0")
    path = hub._record_path("hf:acme/tiny-GGUF@main:Q8_0")
    record = json.loads(path.read_text())
    record["tensors"][0][3] = "many"
    path.write_text(json.dumps(record))
    r = run("fit", "acme/tiny-GGUF:Q8_0", *GPU, "--offline")
    assert r.exit_code == 1 and "not in the cache" in r.output, r.output
    assert run("models", "--remote", "--json").exit_code == 0
    assert fit_json("acme/tiny-GGUF:Q8_0")["weights_bytes"] > 0  # online: fetched again and rewritten
    assert hub.read_record("hf:acme/tiny-GGUF@main:Q8_0") is not None


def test_offline_without_a_cache_is_one_line(env):
    r = run("fit", "acme/qwen3-4b", *GPU, "--offline")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "offline and not in the cache" in r.output, r.output
    assert env.requests == []


def test_a_second_fetch_of_an_unchanged_gguf_reads_no_header(env):
    fit_json("acme/tiny-GGUF:Q4_K_M")
    first = env.bytes_sent("acme/tiny-GGUF/tiny-Q4_K_M.gguf")
    fit_json("acme/tiny-GGUF:Q4_K_M")
    assert env.bytes_sent("acme/tiny-GGUF/tiny-Q4_K_M.gguf") == first  # the listing's sha256 is unchanged


def test_models_remote_lists_the_cache(env):
    assert "Nothing fetched yet" in run("models", "--remote").output
    fit_json("acme/qwen3-4b")
    fit_json("acme/tiny-GGUF:Q8_0")
    r = run("models", "--remote", "--json")
    names = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert set(names) == {"acme/qwen3-4b", "acme/tiny-GGUF:Q8_0"}
    assert names["acme/tiny-GGUF:Q8_0"]["kind"] == "gguf" and names["acme/tiny-GGUF:Q8_0"]["weights_bytes"] > 0
    table = run("models", "--remote").output
    assert "acme/qwen3-4b" in table and "GGUF" in table


# ---------------------------------------------------------------- every command that takes a model

def test_check_breakeven_plan_and_import_take_hub_names(env, user_models):
    r = run("check", "--model", "acme/tiny-GGUF:Q4_K_M", "--model", "acme/qwen3-4b", *GPU, "--json")
    assert r.exit_code == 0, r.output
    assert {x["model"] for x in json.loads(r.stdout)["results"]} == {"tiny-q4_k_m", "qwen3-4b"}
    r = run("breakeven", "--model", "acme/qwen3-4b", "--gpu", "RTX 4090", "--kwh-price", "0.3", "--api", "gpt-4o",
            "--json")
    assert r.exit_code == 0, r.output
    r = run("plan", "--model", "acme/tiny-GGUF:Q4_K_M", "--context", "4096", "--json")
    assert r.exit_code == 0, r.output
    r = run("import", "acme/qwen3-4b", "--name", "my-qwen")
    assert r.exit_code == 0 and (user_models / "my-qwen.toml").is_file(), r.output
    assert fit_json("my-qwen")["kv_bytes_per_token"] == fit_json("acme/qwen3-4b")["kv_bytes_per_token"]


# ---------------------------------------------------------------- Ollama

def test_ollama_registry_reads_the_model_layer_header(env, files):
    doc = fit_json("ollama:tiny:q4")
    assert doc["weights_bytes"] == files["big_bytes"]
    sent = env.bytes_sent("acme/tiny-GGUF/tiny-Q4_K_M.gguf") + env.bytes_sent("ollama:library/tiny:q4")
    assert 0 < sent <= 4 * MIB
    assert fit_json("tiny:q4")["weights_bytes"] == doc["weights_bytes"]  # a bare NAME:TAG that is no profile
    r = run("fit", "ollama:tiny:nope", *GPU)
    assert r.exit_code == 2 and "404" in r.output and r.output.count("\n") == 1, r.output


def test_a_pulled_ollama_model_needs_no_network(env, files, tmp_path, monkeypatch):
    store = tmp_path / "ollama"
    digest = "sha256:" + hub_sha256(files["small"])
    (store / "blobs").mkdir(parents=True)
    shutil.copy(files["small"], store / "blobs" / digest.replace(":", "-"))
    for host, ns, model, tag in (("registry.ollama.ai", "library", "mine", "7b"), ("hf.co", "acme", "tiny-gguf",
                                                                                    "Q4_K_M")):
        manifest = store / "manifests" / host / ns / model / tag
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"schemaVersion": 2, "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 1}]}))
    monkeypatch.setenv("ADVISOR_OLLAMA_REGISTRY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    want = tensor_bytes(files["small"])
    for name in ("mine:7b", "ollama:mine:7b", "ollama:library/mine:7b", "hf.co/acme/tiny-GGUF:Q4_K_M"):
        assert fit_json(name)["weights_bytes"] == want, name
    assert env.requests == []


def hub_sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- the header reader

def test_the_header_reader_agrees_with_gguf_py(files, tmp_path):
    assert written_bytes(tiny_tensors(3000)) == tensor_bytes(files["medium"])  # the reference the tests use
    for path in (files["medium"], files["small"], files["mmproj"], *files["q8_parts"]):
        ours = gguf_header.read_file(path)
        ref = GGUFReader(str(path))
        assert [(t.name, t.type_name, t.n_elements, t.n_bytes) for t in ours.tensors] == [
            (t.name, t.tensor_type.name, int(t.n_elements), int(t.n_bytes)) for t in ref.tensors]
        assert ours.data_offset == ref.data_offset
        for key, field in ref.fields.items():
            if key.startswith("GGUF.") or key.startswith("tokenizer.ggml."):
                continue
            assert ours.metadata[key] == pytest.approx(field.contents()), key


def test_every_metadata_type_reads(tmp_path):
    from gguf import GGUFValueType as V

    path = tmp_path / "types.gguf"
    w = GGUFWriter(str(path), "llama")
    values = {"t.u8": (7, V.UINT8), "t.i8": (-7, V.INT8), "t.u16": (700, V.UINT16), "t.i16": (-700, V.INT16),
              "t.u32": (70000, V.UINT32), "t.i32": (-70000, V.INT32), "t.f32": (0.5, V.FLOAT32),
              "t.bool": (True, V.BOOL), "t.str": ("héllo", V.STRING), "t.u64": (2**40, V.UINT64),
              "t.i64": (-(2**40), V.INT64), "t.f64": (0.25, V.FLOAT64)}
    for key, (value, vtype) in values.items():
        w.add_key_value(key, value, vtype)
    w.add_array("t.arr_i32", [1, 2, 3])
    w.add_array("t.arr_str", ["a", "bc"])
    w.add_array("t.arr_arr", [[1, 2], [3]])
    w.add_array("tokenizer.ggml.scores", [0.5] * 1000)
    w.add_tensor("token_embd.weight", np.zeros((4, 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    h = gguf_header.read_file(path)
    for key, (value, _) in values.items():
        assert h.metadata[key] == value, key
    assert h.metadata["t.arr_i32"] == [1, 2, 3] and h.metadata["t.arr_str"] == ["a", "bc"]
    assert h.metadata["t.arr_arr"] == [[1, 2], [3]] and "tokenizer.ggml.scores" not in h.metadata
    assert h.version == 3 and h.tensors[0].n_bytes == 4 * 32 * 4


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def test_a_remote_header_skips_fixed_size_arrays_without_fetching_them():
    """Bytes laid out by hand from ggml/docs/gguf.md: an 8 MB int32 array the reader steps over unfetched."""
    count = 2_000_000
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 2)
    head += _gguf_string("tokenizer.ggml.token_type") + struct.pack("<IIQ", 9, 5, count) + bytes(4 * count)
    head += _gguf_string("llama.after") + struct.pack("<II", 4, 5)
    head += _gguf_string("token_embd.weight") + struct.pack("<IQQIQ", 2, 32, 4, 0, 0)
    data = head + bytes(-len(head) % 32) + bytes(32 * 4 * 4)
    got = []

    def fetch(offset, length):
        piece = data[offset:offset + length]
        got.append(len(piece))
        return piece

    h = gguf_header.read_remote(fetch, "mem", len(data))
    assert h.metadata == {"llama.after": 5} and h.tensors[0].name == "token_embd.weight"
    assert h.tensors[0].n_bytes == 512 and h.data_offset == len(head) + (-len(head) % 32)
    assert h.bytes_read == sum(got) < 1 * MIB
    assert gguf_header.read_remote(fetch, "mem").tensors == h.tensors  # size unknown: the same


def test_truncated_and_foreign_bytes_are_one_line_errors(files, tmp_path):
    data = files["small"].read_bytes()
    for name, blob in (("cut-header.gguf", data[:300]), ("cut-data.gguf", data[:-100]),
                       ("v1.gguf", b"GGUF" + (1).to_bytes(4, "little") + bytes(16)),
                       ("be.gguf", b"GGUF" + (3).to_bytes(4, "big") + bytes(16)),
                       ("huge.gguf", b"GGUF" + (3).to_bytes(4, "little") + (2**40).to_bytes(8, "little") + bytes(8))):
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(ProfileError) as exc:
            gguf_header.read_file(p)
        assert str(p) in str(exc.value) and "\n" not in str(exc.value), name


def test_the_type_tables_match_gguf_py_and_quants_toml(registry):
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

    for t in GGMLQuantizationType:
        assert gguf_header.GGML_TYPES[int(t)] == (t.name, *GGML_QUANT_SIZES[t]), t
    assert set(gguf_header.GGML_TYPES) == {int(t) for t in GGMLQuantizationType}
    for ft in LlamaFileType:
        assert gguf_header.FILE_TYPES[int(ft)] == ft.name.removeprefix("MOSTLY_").replace("ALL_", ""), ft
    types = {k.lower(): v for k, v in registry.quants.types.items()}
    for name, elements, nbytes in gguf_header.GGML_TYPES.values():
        if name.lower() in types:  # the same bytes per element (quants.toml has NVFP4 per 16, ggml per 64)
            t = types[name.lower()]
            assert t.block_bytes * elements == nbytes * t.block_elements, name


def test_a_local_gguf_with_a_150k_vocabulary_reads_in_well_under_a_second(tmp_path):
    path = tmp_path / "vocab.gguf"
    v = 151936
    w = GGUFWriter(str(path), "llama")
    w.add_block_count(1)
    w.add_embedding_length(32)
    w.add_head_count(2)
    w.add_feed_forward_length(64)
    w.add_context_length(4096)
    w.add_token_list([f"token-{i}" for i in range(v)])
    w.add_token_types([1] * v)
    w.add_token_merges([f"tok-{i} en-{i}" for i in range(v)])
    w.add_tensor("token_embd.weight", np.zeros((v, 32), dtype=np.float16))
    w.add_tensor("blk.0.attn_q.weight", np.zeros((32, 32), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    from advisor.sources.model_files import import_file

    start = time.perf_counter()
    imported = import_file(path)
    assert time.perf_counter() - start < 0.5 and imported.profile.vocab == v


# ---------------------------------------------------------------- start-up cost

@pytest.mark.parametrize("args", [["--help"], ["check", "--model", "llama-3-8b", "--gpu", "RTX 4090", "--json"]])
def test_help_and_check_do_not_import_huggingface_hub(args, tmp_path):
    # the entry point leaves by os._exit (cli._leave): made a plain exit here, to look at sys.modules afterwards
    code = ("import os, sys, runpy; sys.argv = ['advisor'] + %r\n"
            "os._exit = sys.exit\n"
            "try:\n    runpy.run_module('advisor', run_name='__main__')\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('huggingface_hub', 'httpx2', 'gguf', 'numpy'))\n"
            "print('IMPORTED', bad, file=sys.stderr)\n") % (args,)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert "IMPORTED []" in out.stderr, out.stderr


def test_a_local_gguf_imports_neither_gguf_py_nor_numpy(files, tmp_path):
    code = ("import sys\nfrom advisor.sources.model_files import load_model\n"
            f"load_model({str(files['small'])!r})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gguf', 'numpy', 'huggingface_hub')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr
