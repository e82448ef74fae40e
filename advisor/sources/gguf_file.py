"""A GGUF file's header -> a ModelProfile plus its exact weights layout, never reading tensor data.

gguf_header.py (a reader of our own: llama.cpp's gguf.GGUFReader builds Python objects for the whole vocabulary)
parses the metadata and the tensor table; the tensor data is never read. Each tensor's stored size gives the
weights bytes exactly, grouped as llama.cpp places them: token_embd stays in host RAM, blk.N.* go with layer N,
the rest (output, output_norm) with the last offloaded layer. Split files (name-00001-of-00003.gguf) are read part by part and summed.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from advisor.core.record import record
from advisor.core.tensors import GroupSums, WeightsLayout, group_of
from advisor.errors import ProfileError
from advisor.sources.hf_config import MAX_FIELD_VALUE
from advisor.sources.imported import Imported

SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")
BLOCK_TENSOR = re.compile(r"^blk\.(?P<layer>\d+)\.")
EXPERT_TENSOR = re.compile(r"_exps\.")  # blk.N.ffn_{gate,up,down}_exps.weight: all experts in one tensor
TOKEN_EMBD = "token_embd.weight"
OUTPUT = "output.weight"


def split_parts(path: Path) -> list[Path]:
    """All parts of a split GGUF, whichever part is named; [path] for a single file."""
    m = SPLIT_NAME.match(path.name)
    if not m:
        return [path]
    count = int(m["count"])
    if count < 1:
        raise ProfileError(f"{path}: a split GGUF name needs a part count of at least 1")
    parts = [path.with_name(f"{m['stem']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise ProfileError(f"{path}: split GGUF is missing {', '.join(missing[:3])}"
                           + (f" and {len(missing) - 3} more" if len(missing) > 3 else ""))
    return parts


@record
class FileWeightsLayout(WeightsLayout):
    """A GGUF file's weights, with what llama.cpp's CPU backend decides per tensor: the (ggml type, ne[1], bytes) of
    each weight a MUL_MAT / MUL_MAT_ID reads (engines/llamacpp.py repack_bytes picks the repacked ones; ne[1] 0 when
    the header's shapes were not kept, as in a cached remote header) and the bytes of the tied output copy the
    layout counts (llama.cpp makes it only in a GPU's memory)."""

    matmul_weights: tuple = ()
    tied_copy_bytes: int = 0


def read_metadata_and_tensors(path: Path, shapes: dict | None = None) -> tuple[dict, list[tuple[str, str, int, int]]]:
    """(metadata of the first part, [(tensor name, type name, elements, bytes)] over every part); `shapes`, when
    given, gets each tensor's ggml shape by name."""
    from advisor.sources.gguf_header import read_file

    metadata: dict = {}
    tensors = []
    for i, part in enumerate(split_parts(path)):
        header = read_file(part)
        if i == 0:
            metadata = header.metadata
        tensors += tensor_rows(header)
        if shapes is not None:
            shapes.update((t.name, t.shape) for t in header.tensors)
    return metadata, tensors


def tensor_rows(header) -> list[tuple[str, str, int, int]]:
    """A GGUFHeader's tensor table as (name, type name, elements, bytes)."""
    return [(t.name, t.type_name, t.n_elements, t.n_bytes) for t in header.tensors]


def _scalar(meta: dict, key: str, where: str, required: bool = True, minimum: int = 1):
    value = meta.get(key)
    if isinstance(value, list):  # per-layer arrays (head_count_kv of some models): the largest entry
        value = max((v for v in value if isinstance(v, (int, float)) and not isinstance(v, bool)), default=None)
    if value is None:
        if required:
            raise ProfileError(f"{where}: metadata '{key}' is missing")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ProfileError(f"{where}: metadata '{key}' must be an integer, got {value!r}")
    value = int(value)
    if not minimum <= value <= MAX_FIELD_VALUE:
        raise ProfileError(f"{where}: metadata '{key}' is out of range ({value})")
    return value


def _file_type(meta: dict, tensors) -> str:
    """The weight type label: general.file_type's name (Q4_K_M), else the type holding most bytes."""
    from advisor.sources.gguf_header import file_type_label

    label = file_type_label(meta)
    if label:
        return label
    by_bytes = Counter()
    for _, type_name, _, nbytes in tensors:
        by_bytes[type_name] += nbytes
    return (by_bytes.most_common(1)[0][0] if by_bytes else "unknown") + " (file)"


def import_gguf(path: Path, model_id: str | None = None) -> Imported:
    from advisor.sources.hf_config import default_id

    shapes: dict = {}
    meta, tensors = read_metadata_and_tensors(path, shapes)
    default = default_id(path.with_name(SPLIT_NAME.sub(r"\g<stem>.gguf", path.name)))
    return profile_from_gguf(meta, tensors, str(path), model_id or default, path.stem, shapes)


def profile_from_gguf(meta: dict, tensors, where: str, model_id: str, fallback_name: str,
                      shapes: dict | None = None) -> Imported:
    """A profile and its exact weights from a GGUF's metadata and tensor table (a local file's or a remote one's;
    `shapes`, tensor name -> ggml shape, when the header's shapes are at hand)."""
    from advisor.sources.hf_config import load_hf_types
    from advisor.sources.profiles import model_from_fields

    arch = meta.get("general.architecture")
    if not isinstance(arch, str) or not arch:
        raise ProfileError(f"{where}: metadata 'general.architecture' is missing")
    if not tensors:
        raise ProfileError(f"{where}: the file lists no tensors")
    warnings = []

    def num(key, required=True, minimum=1):
        return _scalar(meta, f"{arch}.{key}", where, required, minimum)

    layers = num("block_count")
    hidden = num("embedding_length")
    heads = num("attention.head_count")
    kv_heads = num("attention.head_count_kv", required=False) or heads
    if isinstance(meta.get(f"{arch}.attention.head_count_kv"), list):
        warnings.append("KV heads differ per layer; every layer counted with the most")
    names = {name: (elements, nbytes) for name, _, elements, nbytes in tensors}
    if TOKEN_EMBD not in names:
        raise ProfileError(f"{where}: no '{TOKEN_EMBD}' tensor")
    vocab = names[TOKEN_EMBD][0] // hidden
    kind = next((t for t in load_hf_types().values() if t.architecture == arch), None)
    fields = dict(
        id=model_id, name=str(meta.get("general.name") or fallback_name), layers=layers, hidden=hidden, heads=heads,
        kv_heads=kv_heads, head_dim=num("attention.key_length", required=False) or hidden // heads,
        vocab=vocab, max_context=num("context_length"), tied_embeddings=OUTPUT not in names,
        norms_per_layer=kind.norms_per_layer if kind else 2, source=f"imported from {where}",
    )
    experts = num("expert_count", required=False, minimum=0) or 0
    if experts > 1:
        fields.update(experts=experts, experts_active=num("expert_used_count"),
                      expert_intermediate=num("expert_feed_forward_length", required=False)
                      or num("feed_forward_length"),
                      shared_experts=num("expert_shared_count", required=False, minimum=0) or 0,
                      dense_layers=num("leading_dense_block_count", required=False, minimum=0) or 0,
                      intermediate=num("feed_forward_length", required=False) or 1)
    else:
        fields["intermediate"] = num("feed_forward_length")
    if meta.get(f"{arch}.attention.kv_lora_rank"):
        rope = num("rope.dimension_count")
        key = num("attention.key_length_mla", required=False) or num("attention.key_length")
        fields.update(attention="mla", kv_heads=heads, kv_lora_rank=num("attention.kv_lora_rank"),
                      q_lora_rank=num("attention.q_lora_rank", required=False, minimum=0) or 0,
                      qk_rope_head_dim=rope, qk_nope_head_dim=max(1, key - rope),
                      v_head_dim=num("attention.value_length_mla", required=False) or num("attention.value_length"))
    elif (layered := _gguf_layer_kinds(meta, arch, layers, num, fields, where)) is not None:
        fields.update(layered)
        if isinstance(meta.get(f"{arch}.attention.head_count_kv"), list):
            warnings.remove("KV heads differ per layer; every layer counted with the most")
    else:
        window = num("attention.sliding_window", required=False, minimum=0) or 0
        own = _own_swa_pattern(meta.get(f"{arch}.attention.sliding_window_pattern"), layers, where)
        if window and own is not None:
            fields.update(sliding_window=window, layer_pattern=own)
        elif window and kind and kind.sliding_window_pattern:
            fields.update(sliding_window=window, global_every=kind.sliding_window_pattern)
        elif window:
            warnings.append(f"sliding window {window} with no known layer pattern for '{arch}': counted as "
                            "full-context layers (an upper bound)")
    if kind is None:
        warnings.append(f"architecture '{arch}' is not one advisor knows; read as a generic decoder")
    profile = model_from_fields(fields, arch, where)
    return Imported(profile, tuple(warnings), weights=_layout(tensors, profile, where, shapes or {}),
                    quant=_file_type(meta, tensors))


def _own_swa_pattern(value, layers: int, where: str) -> str | None:
    """A GGUF's own `<arch>.attention.sliding_window_pattern` as a layer pattern ("S" sliding, "A" full), as llama.cpp
    reads it (src/llama-model.cpp llama_model_base::load_swa_pattern@0c1e5709): an array of one bool per layer
    (convert_hf_to_gguf writes layer_types so for gemma3n, gemma4, cohere2, exaone4, ...), or a period n that
    llama_hparams::set_swa_pattern expands (layer il sliding when il % n < n - 1; n = 0: every layer). None when the
    file has no such key (the architecture's default pattern applies)."""
    if value is None:
        return None
    if isinstance(value, list):
        if len(value) != layers or not all(isinstance(v, (bool, int)) for v in value):
            raise ProfileError(f"{where}: metadata 'sliding_window_pattern' must list one bool per layer ({layers})")
        return "".join("S" if v else "A" for v in value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProfileError(f"{where}: metadata 'sliding_window_pattern' must be a layer count or a list, got {value!r}")
    return "".join("S" if value == 0 or i % value < value - 1 else "A" for i in range(layers))


# Recurrent layer kind of llama.cpp's hybrid architectures (src/models/*.cpp): their GGUF files mark a recurrent
# layer with head_count_kv 0 in the per-layer array (lfm2, nemotron_h, granitehybrid) or, for qwen3next, by the
# full-attention interval.
RECURRENT_ARCHS = {"lfm2": "V", "lfm2moe": "V", "qwen3next": "L", "nemotron_h": "M", "nemotron_h_moe": "M",
                   "granitehybrid": "M", "mamba2": "M"}
# llama.cpp hard-codes these patterns (ggml-org/llama.cpp@749f688f): qwen3next full attention every 4th layer
# (src/models/qwen3next.cpp), llama4 chunked attention of 8192 tokens on layers il % 4 < 3 (src/models/llama4.cpp)
QWEN3NEXT_FULL_EVERY = 4
LLAMA4_CHUNK = 8192
LLAMA4_PERIOD = 4


def _gguf_layer_kinds(meta: dict, arch: str, layers: int, num, fields: dict, where: str) -> dict | None:
    """The layer pattern and recurrent sizes of a hybrid or chunked architecture, from the GGUF's own metadata."""
    if arch == "llama4":
        chunk = num("attention.sliding_window", required=False, minimum=0)
        if chunk == 0 and f"{arch}.attention.sliding_window" in meta:
            return None  # llama.cpp: a window of 0 turns chunking off
        out = dict(layer_pattern="".join("A" if i % LLAMA4_PERIOD == LLAMA4_PERIOD - 1 else "C" for i in range(layers)),
                   attention_chunk=chunk or LLAMA4_CHUNK)
        step = num("interleave_moe_layer_step", required=False)
        if step and step > 1:
            out["moe_every"] = step
        return out
    kind = RECURRENT_ARCHS.get(arch)
    if kind is None:
        return None
    if kind == "L":
        every = num("full_attention_interval", required=False) or QWEN3NEXT_FULL_EVERY
        pattern = "".join("A" if (i + 1) % every == 0 else "L" for i in range(layers))
    else:
        kv = meta.get(f"{arch}.attention.head_count_kv")
        if not isinstance(kv, list) or len(kv) != layers:
            raise ProfileError(f"{where}: metadata '{arch}.attention.head_count_kv' must list one value per layer "
                               f"({layers}) for a hybrid '{arch}' model")
        ff = meta.get(f"{arch}.feed_forward_length")
        ff = ff if isinstance(ff, list) and len(ff) == layers else [1] * layers
        pattern = "".join("A" if kv[i] else ("F" if arch.startswith("nemotron_h") and ff[i] else kind)
                          for i in range(layers))
    out: dict = {"layer_pattern": pattern}
    if kind == "V":
        out["conv_cache"] = num("shortconv.l_cache")
    elif kind == "M":
        heads = num("ssm.time_step_rank")
        out.update(mamba_heads=heads, mamba_head_dim=num("ssm.inner_size") // heads, mamba_state=num("ssm.state_size"),
                   mamba_groups=num("ssm.group_count"), mamba_conv_kernel=num("ssm.conv_kernel"))
        if arch.startswith("nemotron_h"):
            out.update(block_ffn=False, ffn_gated=False)
    else:  # qwen3next stores Gated DeltaNet's sizes in the ssm keys (convert_hf_to_gguf.py Qwen3NextModel)
        v_heads = num("ssm.time_step_rank")
        out.update(linear_key_heads=num("ssm.group_count"), linear_key_head_dim=num("ssm.state_size"),
                   linear_value_heads=v_heads, linear_value_head_dim=num("ssm.inner_size") // v_heads,
                   linear_conv_kernel=num("ssm.conv_kernel"), attn_output_gate=True)
    return out


# Weights no MUL_MAT / MUL_MAT_ID reads as a matrix: looked up by row (token_embd and the other embeddings), and the
# 3-D weights of a plain MUL_MAT (deepseek2's attn_k_b / attn_v_b), which ggml-cpu's repack takes only in 2-D
# (ggml/src/ggml-cpu/repack.cpp extra_buffer_type::supports_op@0c1e5709).
NOT_MATMUL = re.compile(r"(^|\.)(token_embd|per_layer_token_embd|attn_k_b|attn_v_b)\.")


def _layout(tensors, profile, where: str, shapes: dict) -> FileWeightsLayout:
    """Exact bytes and parameters (elements) per tensor group, from the tensor table."""
    sums = GroupSums()
    params = 0
    share = profile.experts_active / profile.experts if profile.experts else 1.0
    embd = embd_params = 0
    matmul = Counter()
    for name, type_name, elements, nbytes in tensors:
        params += elements
        shape = shapes.get(name)
        if not NOT_MATMUL.search(name) and (shape is None or len(shape) == 2
                                             or (len(shape) == 3 and EXPERT_TENSOR.search(name))):
            matmul[(type_name, shape[1] if shape else 0)] += nbytes
        m = BLOCK_TENSOR.match(name)
        layer = -1
        if m:
            layer = int(m["layer"])
            if layer >= profile.layers:
                raise ProfileError(f"{where}: tensor '{name}' is beyond block_count ({profile.layers})")
        kind = group_of(name) if m or name != TOKEN_EMBD else "embeddings"
        if kind == "embeddings":  # token_embd, and Gemma 3n's per-layer table: looked up a row per token
            if name == TOKEN_EMBD:  # the one a tied output duplicates
                embd += nbytes
                embd_params += elements
            sums.add(kind, -1, nbytes, 0, elements, 0)
            continue
        if not m and kind not in ("output",):
            kind = "output"  # anything else outside the blocks goes with the output layer, as llama.cpp places it
        if EXPERT_TENSOR.search(name):  # the active experts' share, of the bytes and of the parameters alike
            sums.add(kind, layer, nbytes, int(nbytes * share), elements, int(elements * share))
        else:
            sums.add(kind, layer, nbytes, nbytes, elements, elements)
    tied = embd if profile.tied_embeddings else 0
    if tied:  # llama.cpp loads token_embd a second time as the output layer on a GPU (TENSOR_DUPLICATED)
        sums.add("output", -1, embd, embd, embd_params, embd_params)
    return FileWeightsLayout(sums.groups(), profile.layers, params,
                             tuple((t, ne1, n) for (t, ne1), n in matmul.items()), tied)
