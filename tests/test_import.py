"""Bring your own model (issue 6): real config.json files, GGUF headers written with the gguf package, user
profiles, and fuzzing that may only ever give an estimate or a clear error."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from advisor.cli import main
from advisor.errors import AdvisorError, ProfileError
from advisor.sources.hf_config import import_config, profile_from_config
from advisor.core.hardware import Machine
from advisor.apps.estimate import estimate, kv_bytes_per_token
from advisor.core.memory import EngineSettings, KVChoice
from advisor.sources.model_files import import_file
from advisor.sources.profiles import load_registry
from advisor.core.tensors import weights_layout

CONFIGS = Path(__file__).parent / "data" / "configs"
F16 = KVChoice("f16", "f16")
GIB = 2**30

# config.json here -> the shipped profile with the same architecture (tests/data/configs/SOURCES.md)
SHIPPED = {
    "meta-llama-3-8b": "llama-3-8b",
    "llama-3.1-8b": "llama-3.1-8b",
    "llama-3.1-70b": "llama-3.1-70b",
    "llama-3.1-405b": "llama-3.1-405b",
    "deepseek-v2-lite": "deepseek-v2-lite",
    "deepseek-v3": "deepseek-v3",
    "mixtral-8x7b-v0.1": "mixtral-8x7b",
    "mistral-7b-instruct-v0.2.MODIFIED-maxpos512": "mistral-7b-v0.2",
    "qwen2.5-7b-instruct": "qwen2.5-7b",
    "gemma-2-9b-it": "gemma-2-9b",
}


def run(*args, **kw):
    return CliRunner().invoke(main, list(args), **kw)


def params(profile):
    quants = load_registry().quants
    return weights_layout(profile, quants.recipe("BF16"), quants).params


def per_token(profile):
    return kv_bytes_per_token(profile, F16, EngineSettings(), load_registry().quants)


@pytest.mark.parametrize("config,shipped", SHIPPED.items())
def test_import_matches_the_shipped_profile(config, shipped):
    imported = import_config(CONFIGS / f"{config}.json").profile
    ref = load_registry().model(shipped)
    assert per_token(imported) == per_token(ref)
    assert params(imported) == pytest.approx(params(ref), rel=0.005)
    assert imported.architecture == ref.architecture


@pytest.mark.parametrize("config,kv_per_token,params_b", [
    # 36 layers x 8 KV heads x head_dim 128 (not 2560/32 = 80) x K,V x 2 bytes; 4.02B (SOURCES.md)
    ("qwen3-4b", 36 * 8 * 128 * 2 * 2, 4.02),
    ("qwen3-8b", 36 * 8 * 128 * 2 * 2, 8.19),
    # gpt-oss-20b: 12 full-attention layers of 24 (layer_types alternate), 8 KV heads x 64; 20.9B total
    ("gpt-oss-20b", 12 * 8 * 64 * 2 * 2, 20.9),
    # Gemma-3-4B text model: 5 global layers of 34 (pattern 6), 4 KV heads x 256 (class defaults); 3.88B
    ("gemma-3-4b-it", 5 * 4 * 256 * 2 * 2, 3.88),
])
def test_models_not_shipped_import_from_their_fields(config, kv_per_token, params_b):
    imported = import_config(CONFIGS / f"{config}.json")
    assert per_token(imported.profile) == kv_per_token
    assert params(imported.profile) / 1e9 == pytest.approx(params_b, rel=0.01)
    has_tower = "vision_config" in json.loads((CONFIGS / f"{config}.json").read_text())
    # the one thing said: a multimodal config's vision tower is not counted (issue 14)
    assert imported.warnings == ((TOWER_NOTE,) if has_tower else ())


TOWER_NOTE = "vision tower not counted: the language model only (add its weights if you feed images or audio)"


@pytest.mark.parametrize("config,globals_,window", [("gemma-2-9b-it", 21, 4096), ("gemma-3-4b-it", 5, 1024),
                                                    ("gpt-oss-20b", 12, 128)])
def test_sliding_window_models_at_128k_count_only_global_layers_in_full(config, globals_, window):
    profile = import_config(CONFIGS / f"{config}.json").profile
    quants = load_registry().quants
    ctx = 131072
    est = estimate(profile, "Q4_K_M", F16, EngineSettings(), ctx, Machine(source="simulated"), quants)
    row = profile.kv_heads * profile.head_dim * 2 * 2
    local = profile.layers - globals_
    ubatch = EngineSettings().n_ubatch
    # llama.cpp keeps pad256(n_swa + n_ubatch) cells in a sliding-window layer (src/llama-kv-cache-iswa.cpp:73):
    # gemma-2 4096 + 512 = 4608, gemma-3 1024 + 512 = 1536, gpt-oss 128 + 512 = 640 -> 768
    kept = -(-(window + ubatch) // 256) * 256
    assert est.kv_bytes == globals_ * row * ctx + local * row * kept
    assert est.kv_bytes < profile.layers * row * ctx  # what a full cache in every layer would take


def test_rope_scaling_stretches_the_original_context():
    cfg = json.loads((CONFIGS / "qwen2.5-7b-instruct.json").read_text())
    cfg["rope_scaling"] = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}
    assert profile_from_config(cfg, "cfg", "q").profile.max_context == 131072
    llama31 = import_config(CONFIGS / "llama-3.1-8b.json").profile  # max_position_embeddings already scaled
    assert llama31.max_context == 131072


def test_layer_types_it_cannot_model_are_said():
    cfg = json.loads((CONFIGS / "gpt-oss-20b.json").read_text())
    cfg["layer_types"] = ["linear_attention", "full_attention"] * 12
    warnings = profile_from_config(cfg, "cfg", "hybrid").warnings
    assert any("linear_attention not modelled" in w for w in warnings)


def test_unknown_model_type_is_a_generic_decoder_with_a_warning():
    cfg = json.loads((CONFIGS / "meta-llama-3-8b.json").read_text())
    cfg["model_type"] = "brand_new_arch"
    imported = profile_from_config(cfg, "cfg", "new")
    assert per_token(imported.profile) == 131072 and "generic" in imported.warnings[0]


@pytest.mark.parametrize("edit,words", [
    (lambda c: c.pop("num_hidden_layers"), "'num_hidden_layers' is missing"),
    (lambda c: c.update(hidden_size="4096"), "'hidden_size' must be an integer"),
    (lambda c: c.update(num_attention_heads=-32), "'num_attention_heads' must be at least 1"),
    (lambda c: c.update(num_key_value_heads=5), "'num_key_value_heads' must divide"),
    (lambda c: c.update(num_hidden_layers=10**6), "'layers' is implausibly large"),
    (lambda c: c.update(tie_word_embeddings="yes"), "'tie_word_embeddings' must be true or false"),
])
def test_bad_fields_name_the_file_and_field(edit, words):
    cfg = json.loads((CONFIGS / "meta-llama-3-8b.json").read_text())
    edit(cfg)
    with pytest.raises(ProfileError) as err:
        profile_from_config(cfg, "my/config.json", "m")
    assert "my/config.json" in str(err.value) and words in str(err.value)


def test_safetensors_index_cross_checks_the_parameter_count(tmp_path):
    cfg = json.loads((CONFIGS / "meta-llama-3-8b.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    index = tmp_path / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 8030261248 * 2}, "weight_map": {}}))
    assert import_file(tmp_path).warnings == ()
    index.write_text(json.dumps({"metadata": {"total_size": 9_000_000_000 * 2}, "weight_map": {}}))
    warnings = import_file(tmp_path / "config.json").warnings
    assert warnings and "9.00B" in warnings[0]


def test_cli_fit_and_check_take_a_config_path(tmp_path):
    r = run("fit", str(CONFIGS / "qwen3-8b.json"), "--quant", "Q4_K_M", "--context", "32768", "--gpu", "RTX 4090",
            "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["kv_bytes"] == 36 * 8 * 128 * 4 * 32768 and d["placement"] == "gpu"
    r = run("check", "--model", str(CONFIGS / "mistral-7b-v0.1.json"), "--gpu", "RTX 4090", "--format", "csv")
    assert r.exit_code == 0 and "mistral-7b-v0.1" in r.stdout
    assert "llama.cpp caches the full context" in r.stderr  # the import's warning, not in the CSV
    assert "caches" not in r.stdout


def test_a_bad_config_file_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "config.json"
    for content in (b"\xff\xfe not utf-8", b'{"model_type": "llama", "num_hidden_layers": ', b"[1, 2]"):
        bad.write_bytes(content)
        r = run("fit", str(bad))
        assert r.exit_code == 1 and r.output.count("\n") == 1 and str(bad) in r.output, r.output
        assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception
    assert run("fit", str(tmp_path / "absent.json")).exit_code == 2


# ---------------------------------------------------------------- GGUF

def write_gguf(path: Path, tensors, arch="llama", layers=2, hidden=64, tied=False, extra=None):
    """A small GGUF: llama-style metadata and the given (name, array, raw_dtype) tensors."""
    w = GGUFWriter(str(path), arch)
    w.add_block_count(layers)
    w.add_embedding_length(hidden)
    w.add_head_count(4)
    w.add_head_count_kv(2)
    w.add_feed_forward_length(128)
    w.add_context_length(4096)
    w.add_file_type(15)  # LLAMA_FTYPE_MOSTLY_Q4_K_M
    w.add_name("tiny")
    for key, value in (extra or {}).items():
        w.add_uint32(key, value)
    for name, array, raw in tensors:
        w.add_tensor(name, array, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tiny_tensors(tied=False):
    """Byte sizes: F16 100x64 embedding 12800; Q4_0 64x64 = 64 rows x 2 blocks x 18 B = 2304; F32 64x64 = 16384;
    Q8_0 100x64 = 100 x 2 x 34 = 6800; Q4_K 4 rows of 256 = 4 x 144 = 576; F32 norm 64 x 4 = 256."""
    out = [
        ("token_embd.weight", np.zeros((100, 64), dtype=np.float16), None),
        ("blk.0.attn_q.weight", np.zeros((64, 36), dtype=np.uint8), T.Q4_0),
        ("blk.0.ffn_down.weight", np.zeros((4, 144), dtype=np.uint8), T.Q4_K),
        ("blk.1.attn_q.weight", np.zeros((64, 64), dtype=np.float32), None),
        ("output_norm.weight", np.zeros(64, dtype=np.float32), None),
    ]
    if not tied:
        out.append(("output.weight", np.zeros((100, 68), dtype=np.uint8), T.Q8_0))
    return out


def test_gguf_weights_are_the_sum_of_its_tensor_sizes(tmp_path):
    path = write_gguf(tmp_path / "tiny.Q4_K_M.gguf", tiny_tensors())
    imported = import_file(path)
    w = imported.weights
    assert w.total_bytes == 12800 + 2304 + 576 + 16384 + 256 + 6800
    assert w.token_embd_bytes == 12800 and w.layer_bytes == (2304 + 576, 16384) and w.output_bytes == 256 + 6800
    assert imported.quant == "Q4_K_M" and imported.profile.vocab == 100 and imported.profile.layers == 2
    est = estimate(imported.profile, imported.quant, F16, EngineSettings(), 1024, Machine(source="simulated"),
                   load_registry().quants, weights=w)
    assert est.weights_bytes == w.total_bytes and est.kv_bytes == 2 * 2 * 16 * 2 * 2 * 1024


def test_tied_gguf_loads_the_embedding_twice_as_llama_cpp_does(tmp_path):
    w = import_file(write_gguf(tmp_path / "tied.gguf", tiny_tensors(tied=True))).weights
    assert w.total_bytes == 12800 + 2304 + 576 + 16384 + 256 + 12800


def test_split_gguf_is_summed_and_a_missing_part_is_named(tmp_path):
    tensors = tiny_tensors()
    write_gguf(tmp_path / "m-00001-of-00002.gguf", tensors[:3])
    write_gguf(tmp_path / "m-00002-of-00002.gguf", tensors[3:])
    whole = import_file(tmp_path / "m-00002-of-00002.gguf")
    assert whole.weights.total_bytes == 12800 + 2304 + 576 + 16384 + 256 + 6800
    assert whole.profile.id == "m"
    (tmp_path / "m-00002-of-00002.gguf").unlink()
    with pytest.raises(ProfileError, match="missing m-00002-of-00002.gguf"):
        import_file(tmp_path / "m-00001-of-00002.gguf")


def test_corrupt_gguf_is_a_clear_error(tmp_path):
    good = write_gguf(tmp_path / "good.gguf", tiny_tensors()).read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good[:200])
    r = run("fit", str(cut), "--gpu", "RTX 4090")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "cut.gguf" in r.output, r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(range(256)) * 4)
    r = run("fit", str(junk))
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.exc_info


def test_cli_fit_on_a_gguf_uses_its_weights_and_refuses_another_quant(tmp_path):
    path = write_gguf(tmp_path / "tiny.gguf", tiny_tensors())
    r = run("fit", str(path), "--context", "1024", "--kv-type", "q8_0", "--gpu", "RTX 4090", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["weights_bytes"] == 12800 + 2304 + 576 + 16384 + 256 + 6800
    assert json.loads(r.output)["quant"] == "Q4_K_M"
    assert run("fit", str(path), "--quant", "Q8_0").exit_code == 2
    assert run("fit", str(path), "--engine", "vllm", "--gpu", "RTX 4090").exit_code == 2
    r = run("check", "--model", str(path), "--gpu", "RTX 4090", "--format", "csv", "--no-what-if")
    assert r.exit_code == 0 and r.output.count("tiny") == 3  # one row per default KV type, file's weights


# ---------------------------------------------------------------- user profiles

def test_import_saves_a_profile_usable_by_id(user_models):
    r = run("import", str(CONFIGS / "qwen3-4b.json"), "--name", "my-qwen")
    assert r.exit_code == 0, r.output
    assert (user_models / "my-qwen.toml").is_file()
    fit = run("fit", "my-qwen", "--context", "8192", "--gpu", "RTX 4090", "--json")
    assert fit.exit_code == 0 and json.loads(fit.output)["kv_bytes_per_token"] == 147456
    listed = json.loads(run("models", "--user", "--json").output)
    assert listed["user_dir"] == str(user_models) and [m["id"] for m in listed["models"]] == ["my-qwen"]
    assert run("import", str(CONFIGS / "qwen3-4b.json"), "--name", "my-qwen").exit_code == 2  # exists
    assert run("import", str(CONFIGS / "qwen3-4b.json"), "--name", "my-qwen", "--force").exit_code == 0


def test_a_user_profile_shadows_a_shipped_one_with_a_notice(user_models):
    cfg = json.loads((CONFIGS / "meta-llama-3-8b.json").read_text())
    cfg["max_position_embeddings"] = 16384
    (user_models.parent / "config.json").write_text(json.dumps(cfg))
    assert run("import", str(user_models.parent / "config.json"), "--name", "llama-3-8b").exit_code == 0
    r = run("fit", "llama-3-8b", "--json", "--gpu", "RTX 4090")
    assert "shadows the shipped one" in r.stderr
    assert json.loads(r.stdout)["model_max_context"] == 16384


GOOD_PROFILE = ('architecture = "llama"\n[[models]]\nid = "x"\nhidden = 64\nheads = 4\nintermediate = 128\n'
                'vocab = 100\nmax_context = 4096\nsource = "test"\n')


@pytest.mark.parametrize("text,words", [
    (GOOD_PROFILE + "layers = -3\n", "field 'layers' must not be negative"),
    (GOOD_PROFILE + 'layers = "many"\n', "field 'layers' must be int"),
    (GOOD_PROFILE, "missing field 'layers'"),
    (GOOD_PROFILE + "layers = 2\nkv_heads = 3\n", "'kv_heads' must divide"),
])
def test_a_broken_user_profile_names_file_and_field(user_models, text, words):
    user_models.mkdir()
    (user_models / "x.toml").write_text(text)
    r = run("models")
    assert r.exit_code == 1 and str(user_models / "x.toml") in r.output and words in r.output, r.output
    assert isinstance(r.exception, SystemExit), r.exc_info  # sys.exit, not an escaped exception


def test_models_user_says_where_profiles_live_when_there_are_none(user_models):
    r = run("models", "--user")
    assert r.exit_code == 0 and "No user profiles yet" in r.output and str(user_models) in r.output


# ---------------------------------------------------------------- fuzzing: an estimate or a clear error

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)
BASES = [json.loads(p.read_text()) for p in sorted(CONFIGS.glob("*.json"))]
KEYS = sorted({k for c in BASES for k in c} | {k for c in BASES for k in c.get("text_config", {})})


def _estimate_or_error(cfg):
    try:
        imported = profile_from_config(cfg, "fuzz.json", "fuzz")
    except AdvisorError as exc:
        assert "fuzz.json" in str(exc) and "\n" not in str(exc)
        return
    est = estimate(imported.profile, "Q4_K_M", F16, EngineSettings(), 4096, Machine(source="simulated"),
                   load_registry().quants)
    assert est.total_bytes > 0 and est.kv_bytes >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(base=st.sampled_from(BASES), drop=st.lists(st.sampled_from(KEYS), max_size=4),
       changes=st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=4))
def test_fuzzed_configs_give_an_estimate_or_a_clear_error(base, drop, changes):
    cfg = json.loads(json.dumps(base))
    for key in drop:
        cfg.pop(key, None)
    cfg.update(changes)
    _estimate_or_error(cfg)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_fuzzed_config_bytes_never_trace_back(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "config.json"
    path.write_bytes(data)
    try:
        import_file(path)
    except AdvisorError as exc:
        assert str(path) in str(exc)


@pytest.fixture(scope="module")
def good_gguf(tmp_path_factory):
    return write_gguf(tmp_path_factory.mktemp("gguf") / "good.gguf", tiny_tensors()).read_bytes()


# The good file is ~39 KB (a 736-byte header, then tensor data): `cut` None keeps it whole, so flips that land in
# the tensor data or leave the header readable take the estimate path, not only the error path.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.none() | st.integers(min_value=0, max_value=2000), flips=st.lists(
    st.tuples(st.integers(min_value=0, max_value=1999), st.integers(min_value=0, max_value=255)), max_size=6))
@example(cut=None, flips=[])  # the untouched file: the estimate path is always taken at least once
@example(cut=None, flips=[(1000, 255)])  # a byte of tensor data changed: the header still reads
def test_fuzzed_gguf_bytes_give_an_estimate_or_a_clear_error(tmp_path_factory, good_gguf, cut, flips):
    assert len(good_gguf) > 2000  # a cut in 0..2000 always truncates; only cut None reaches the estimate
    data = bytearray(good_gguf if cut is None else good_gguf[:cut])
    for at, value in flips:
        if at < len(data):
            data[at] = value
    path = tmp_path_factory.mktemp("fuzz") / "f.gguf"
    path.write_bytes(bytes(data))
    try:
        imported = import_file(path)
    except AdvisorError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        return
    est = estimate(imported.profile, imported.quant, F16, EngineSettings(), 512, Machine(source="simulated"),
                   load_registry().quants, weights=imported.weights)
    # the file's weights, as held: on this CPU-only machine a tied output is token_embd itself (no copy is made)
    tied = getattr(imported.weights, "tied_copy_bytes", 0) if imported.profile.tied_embeddings else 0
    assert est.weights_bytes == imported.weights.total_bytes - tied


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(min_size=1, max_size=12), value=st.integers(-2**31, 2**31 - 1))
def test_fuzzed_gguf_metadata_values(tmp_path_factory, name, value):
    keys = ["llama.block_count", "llama.embedding_length", "llama.attention.head_count",
            "llama.feed_forward_length", "llama.context_length", "llama.expert_count"]
    key = keys[len(name) % len(keys)]
    path = tmp_path_factory.mktemp("meta") / "m.gguf"
    w = GGUFWriter(str(path), "llama")
    meta = {"llama.block_count": 2, "llama.embedding_length": 64, "llama.attention.head_count": 4,
            "llama.feed_forward_length": 128, "llama.context_length": 4096}
    meta[key] = value
    for k, v in meta.items():
        w.add_int32(k, v)
    w.add_string("general.name", name)
    for tname, array, raw in tiny_tensors():
        w.add_tensor(tname, array, raw_dtype=raw)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    try:
        imported = import_file(path)
    except AdvisorError as exc:
        assert str(path) in str(exc)
        return
    estimate(imported.profile, imported.quant, F16, EngineSettings(), 512, Machine(source="simulated"),
             load_registry().quants, weights=imported.weights)


def test_an_alias_that_names_another_profile_is_refused_with_file_and_name(user_models):
    user_models.mkdir(parents=True, exist_ok=True)
    (user_models / "mine.toml").write_text(GOOD_PROFILE + 'layers = 2\naliases = ["gpt-oss:120b"]\n')
    r = run("models")
    assert r.exit_code == 1 and "mine.toml" in r.output and "'gpt-oss:120b' already names profile 'gpt-oss-120b'" \
        in r.output, r.output
