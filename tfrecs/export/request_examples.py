"""Requests for a written export, built from its own signature and warmup rows, in four renderings.

``request_examples(export_dir)`` reads the export's SignatureDef from ``saved_model.pb``
(input names, dtypes, shapes and defaults; outputs) without loading the graph, so it
works on ScaNN exports without the ScaNN ops. Its values are real training rows: the
largest record of ``assets.extra/tf_serving_warmup_requests`` (every tfrecs export writes
one), else values from the ``feature_spec.json`` asset, else zeros and empty strings. The
request is rendered as

* a REST body for ``POST /v1/models/<name>:predict`` (columnar ``inputs`` by default, which
  can carry a ``[1, m]`` ``exclude_item_ids``; ``instances`` rows on request) and a curl line;
* a gRPC ``PredictRequest`` built with ``tensorflow-serving-api`` (a dependency of tfrecs);
* Python through ``tf.saved_model.load`` (``import scann`` first for ScaNN exports);
* the TF1 session loader ``tf.compat.v1.saved_model.loader.load``.

``docs/generate_serving_examples.py`` writes the examples of ``docs/serving.md`` with it,
and ``tests/test_serving_docs.py`` runs every rendering against real exports.

Example::

    examples = request_examples("saved_models/two_tower/1")
    print(examples.curl())            # POST /v1/models/two_tower:predict with two real rows
    print(examples.python_tf2())      # the same request without a server
    examples.answer_shapes()          # {"item_ids": ("string", (2, 10)), "scores": ("float32", (2, 10)), ...}
"""

import base64
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfrecs.export.layout import model_versions
from tfrecs.export.warmup import WARMUP_FILE, read_warmup

_WIDTH = 100
_INDENT = "    "


@dataclass(frozen=True)
class TensorInfo:
    """One signature input or output.

    Attributes:
        name: the signature key.
        dtype: TensorFlow dtype name (``string``, ``int64``, ``float32``, ...).
        shape: dimensions, ``-1`` where unknown (the batch dimension first).
        default: the SignatureDef default of an optional input (TF Serving and the TF1
            loader use it when a request leaves the input out), else None.
    """

    name: str
    dtype: str
    shape: Tuple[int, ...]
    default: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    @property
    def optional(self) -> bool:
        return self.default is not None


def _numpy_dtype(dtype: str):
    return object if dtype == "string" else tf.dtypes.as_dtype(dtype).as_numpy_dtype


def _as_array(values: Any, dtype: str) -> np.ndarray:
    """``values`` as numpy of the signature dtype; strings as ``bytes`` objects (what TensorFlow returns)."""
    if dtype != "string":
        return np.asarray(values, dtype=_numpy_dtype(dtype))
    array = np.asarray(values, dtype=object)
    flat = [v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1)]
    return np.asarray(flat, dtype=object).reshape(array.shape)


# -- literals -----------------------------------------------------------------------------------


def _scalar(value: Any, dtype: str, style: str) -> str:
    """One value as a JSON (``style="json"``) or Python literal."""
    if dtype == "string":
        raw = value if isinstance(value, bytes) else str(value).encode()
        try:
            return json.dumps(raw.decode("utf-8"), ensure_ascii=False)
        except UnicodeDecodeError:
            return json.dumps({"b64": base64.b64encode(raw).decode()}) if style == "json" else repr(raw)
    if dtype == "bool":
        return ("true" if value else "false") if style == "json" else repr(bool(value))
    if np.issubdtype(np.asarray(value).dtype, np.floating):
        return str(np.float32(value)) if dtype == "float32" else repr(float(value))
    return str(int(value))


def _literal(array: np.ndarray, dtype: str, style: str, column: int, indent: str) -> str:
    """A nested-list literal of ``array`` starting at ``column``; long rows wrap, aligned after ``[``.

    Rows of a matrix that does not fit on one line go on lines of their own, indented one step
    (2 spaces in JSON, 4 in Python) deeper than ``indent``.
    """
    if not isinstance(array, np.ndarray) or array.ndim == 0:
        return _scalar(array.item() if isinstance(array, np.ndarray) else array, dtype, style)
    flat = "[" + ", ".join(_literal(row, dtype, style, 0, "") for row in array) + "]"
    if column + len(flat) <= _WIDTH:
        return flat
    if array.ndim == 1:
        lines, line, offset = [], "[", column
        for position, value in enumerate(array):
            item = _scalar(value, dtype, style) + ("," if position < len(array) - 1 else "]")
            if line.strip() not in ("", "[") and offset + len(line) + 1 + len(item) > _WIDTH:
                lines.append(line)
                line, offset = " " * (column + 1) + item, 0
            else:
                line = line + item if line == "[" else f"{line} {item}"
        lines.append(line)
        return "\n".join(lines)
    inner = indent + ("  " if style == "json" else _INDENT)
    rows = [inner + _literal(row, dtype, style, len(inner), inner) for row in array]
    return "[\n" + ",\n".join(rows) + "\n" + indent + "]"


# -- reading an export --------------------------------------------------------------------------


def _version_dir(export_dir: str) -> str:
    if os.path.isfile(os.path.join(export_dir, "saved_model.pb")):
        return export_dir
    versions = model_versions(export_dir)
    if versions:
        return os.path.join(export_dir, str(versions[-1]))
    raise ValueError(
        f"{export_dir}: no saved_model.pb and no integer version directories; pass an export's "
        "version directory, e.g. saved_models/two_tower/1"
    )


def _meta_graph(version_dir: str):
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph
    raise ValueError(f"{version_dir}: the SavedModel has no 'serve' meta graph (the tag TF Serving loads)")


def signature_names(export_dir: str) -> List[str]:
    """The serving signatures of an export (``serving_default`` for every tfrecs export)."""
    meta_graph = _meta_graph(_version_dir(export_dir))
    return sorted(name for name in meta_graph.signature_def if not name.startswith("__"))


def _uses_scann(meta_graph) -> bool:
    graph = meta_graph.graph_def
    nodes = list(graph.node) + [node for function in graph.library.function for node in function.node_def]
    return any(node.op.startswith("Scann>") for node in nodes)


def _export_info(version_dir: str) -> Dict[str, Any]:
    path = os.path.join(version_dir, "assets", "export_info.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _ordered(names: Sequence[str], preferred: Sequence[str]) -> List[str]:
    known = [name for name in preferred if name in names]
    return known + sorted(name for name in names if name not in known)


def _tensor_infos(tensors, order: Sequence[str], defaults=None) -> List[TensorInfo]:
    infos = []
    for name in _ordered(list(tensors), order):
        info = tensors[name]
        dims = info.tensor_shape.dim
        shape = (-1,) if info.tensor_shape.unknown_rank else tuple(d.size for d in dims)
        default = tf.make_ndarray(defaults[name]) if defaults is not None and name in defaults else None
        infos.append(TensorInfo(name, tf.dtypes.as_dtype(info.dtype).name, shape, default))
    optional_last = [i for i in infos if not i.optional] + [i for i in infos if i.optional]
    return optional_last


def _warmup_request(version_dir: str, signature_name: str) -> Dict[str, np.ndarray]:
    """The warmup record of ``signature_name`` with the most rows (it also carries the optional inputs)."""
    if not os.path.isfile(os.path.join(version_dir, WARMUP_FILE)):
        return {}
    records = [inputs for name, inputs in read_warmup(version_dir) if name == signature_name]
    if not records:
        return {}
    return max(records, key=lambda inputs: (max(len(v) for v in inputs.values()), len(inputs)))


def _spec_values(version_dir: str, inputs: Sequence[TensorInfo], rows: int) -> Dict[str, np.ndarray]:
    """Values from the ``feature_spec.json`` asset (most frequent ids, numeric means); {} without it."""
    from tfrecs.data.feature_spec import FeatureSpec
    from tfrecs.export.signature import example_features

    path = os.path.join(version_dir, "assets", "feature_spec.json")
    if not os.path.isfile(path):
        return {}
    spec = FeatureSpec.load(path)
    signature = {
        i.name: tf.TensorSpec([None if d == -1 else d for d in i.shape], tf.dtypes.as_dtype(i.dtype))
        for i in inputs
        if not i.optional and i.name in spec
    }
    return example_features(signature, spec, num_rows=rows) if signature else {}


def _placeholder(info: TensorInfo, rows: int) -> np.ndarray:
    shape = [rows] + [1 if d == -1 else d for d in info.shape[1:]]
    return np.full(shape, "" if info.dtype == "string" else 0, dtype=_numpy_dtype(info.dtype))


# -- the request and its renderings --------------------------------------------------------------


@dataclass
class RequestExamples:
    """One request for an export's signature and its renderings (built by ``request_examples``).

    Attributes:
        export_dir: the version directory the request was built from.
        display_dir: the path the Python snippets load (``export_dir`` unless given).
        model_name: TF Serving model name (the directory above the version).
        version: integer version.
        signature_name: the signature the request calls.
        kind: ``retrieval``, ``ranking`` or ``two_stage`` (from ``export_info.json``; None if absent).
        inputs, outputs: the signature's tensors; inputs in training order, optional ones last.
        request: input name -> numpy batch (every input, the optional ones too).
        source: where the values come from: ``warmup``, ``feature_spec`` or ``placeholder``.
        needs_scann: the graph uses ScaNN ops (serve it with a TF Serving build linked with them;
            ``import scann`` before loading it in Python).
        host, rest_port, grpc_port: where the snippets address the server.
    """

    export_dir: str
    display_dir: str
    model_name: str
    version: int
    signature_name: str
    kind: Optional[str]
    inputs: List[TensorInfo]
    outputs: List[TensorInfo]
    request: Dict[str, np.ndarray]
    source: str
    needs_scann: bool
    host: str = "localhost"
    rest_port: int = 8501
    grpc_port: int = 8500

    @property
    def batch_size(self) -> int:
        """Rows (queries or pairs) in the request: the first dimension of its required inputs."""
        return max(len(self.request[i.name]) for i in self.inputs if not i.optional)

    def answer_shapes(self) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
        """Output name -> (dtype, shape) of the answer to this request (the batch dimension filled)."""
        return {
            o.name: (o.dtype, tuple(self.batch_size if i == 0 and d == -1 else d for i, d in enumerate(o.shape)))
            for o in self.outputs
        }

    def describe_answer(self) -> str:
        """``item_ids: string [2, 10]; scores: float32 [2, 10]``."""
        shapes = self.answer_shapes()
        return "; ".join(f"{name}: {dtype} [{', '.join(map(str, shape))}]" for name, (dtype, shape) in shapes.items())

    # REST ---------------------------------------------------------------------------------------

    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}/v1/models/{self.model_name}:predict"

    def rest_body(self, columnar: bool = True) -> Dict[str, Any]:
        """The JSON body (as Python data) of ``POST /v1/models/<name>:predict``.

        Args:
            columnar: ``{"inputs": {name: batch}}`` (TF Serving's columnar format; answers come
                back as ``{"outputs": ...}``), else ``{"instances": [row, ...]}`` (answers as
                ``{"predictions": ...}``).

        Raises:
            ValueError: ``columnar=False`` and an input does not have one row per query (a
                ``[1, m]`` exclusion shared by every query, which rows cannot express).
        """
        return json.loads(self.rest_json(columnar))

    def rest_json(self, columnar: bool = True) -> str:
        """``rest_body`` as indented JSON text (long rows wrapped)."""
        head = f'{{\n  "signature_name": {json.dumps(self.signature_name)},\n'
        if columnar:
            items = []
            for info in self.inputs:
                prefix = f"    {json.dumps(info.name)}: "
                values = _literal(self.request[info.name], info.dtype, "json", len(prefix), "    ")
                items.append(prefix + values)
            return head + '  "inputs": {\n' + ",\n".join(items) + "\n  }\n}"
        uneven = [i.name for i in self.inputs if len(self.request[i.name]) != self.batch_size]
        if uneven:
            raise ValueError(
                f"inputs {uneven} do not have one row per query ({self.batch_size}); the row "
                "('instances') format cannot carry them: use the columnar format"
            )
        rows = []
        for row in range(self.batch_size):
            fields = []
            for info in self.inputs:
                prefix = f"      {json.dumps(info.name)}: "
                values = _literal(self.request[info.name][row], info.dtype, "json", len(prefix), "      ")
                fields.append(prefix + values)
            rows.append("    {\n" + ",\n".join(fields) + "\n    }")
        return head + '  "instances": [\n' + ",\n".join(rows) + "\n  ]\n}"

    def curl(self, columnar: bool = True) -> str:
        """A shell command posting ``rest_json`` (a quoted here-document: no shell escaping needed)."""
        return (
            f"curl -s -X POST {self.rest_url()} \\\n"
            f"  -H 'Content-Type: application/json' -d @- <<'JSON'\n{self.rest_json(columnar)}\nJSON"
        )

    def rest_answer(self, outputs: Mapping[str, Any], columnar: bool = True, decimals: Optional[int] = 4) -> str:
        """The JSON TF Serving answers for ``outputs`` (name -> array, e.g. from a local run), as text.

        One named output is unwrapped (``{"outputs": [...]}``, ``{"predictions": [...]}``), as TF
        Serving does; several give an object per name (per row for ``predictions``). Floats are
        rounded to ``decimals`` (None: as computed).
        """
        values = {}
        for info in self.outputs:
            array = np.asarray(outputs[info.name])
            if array.dtype.kind == "f" and decimals is not None:
                array = np.round(array.astype(np.float64), decimals)
            values[info.name] = array
        dtypes = {info.name: info.dtype for info in self.outputs}
        if not columnar:
            if len(values) == 1:
                ((name, array),) = values.items()
                body = _literal(array, dtypes[name], "json", len('{"predictions": '), "")
                return '{"predictions": ' + body + "}"
            rows = [
                "  {"
                + ", ".join(f"{json.dumps(n)}: {_literal(v[row], dtypes[n], 'json', 0, '')}" for n, v in values.items())
                + "}"
                for row in range(self.batch_size)
            ]
            return '{"predictions": [\n' + ",\n".join(rows) + "\n]}"
        if len(values) == 1:
            ((name, array),) = values.items()
            return '{"outputs": ' + _literal(array, dtypes[name], "json", len('{"outputs": '), "") + "}"
        items = []
        for name, array in values.items():
            prefix = f"  {json.dumps(name)}: "
            items.append(prefix + _literal(array, dtypes[name], "json", len(prefix), "  "))
        return '{"outputs": {\n' + ",\n".join(items) + "\n}}"

    # gRPC and Python ----------------------------------------------------------------------------

    def _python_value(self, info: TensorInfo, call: str, column: int, indent: str) -> str:
        numpy_dtype = "object" if info.dtype == "string" else f"np.{info.dtype}"
        value = _literal(self.request[info.name], info.dtype, "python", column + len(call) + 1, indent)
        if call == "np.array":
            return f"{call}({value}, {numpy_dtype})"
        return f"{call}({value}, tf.{info.dtype})"

    def _comment(self, info: TensorInfo) -> str:
        if not info.optional:
            return ""
        return f"  # optional: default {list(info.default.shape)} empty"

    def grpc_python(self, timeout: float = 10.0) -> str:
        """Python building a ``PredictRequest`` (tensorflow-serving-api) and calling ``Predict`` over gRPC."""
        lines = [
            "import grpc",
            "import tensorflow as tf",
            "from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc",
            "",
            "request = predict_pb2.PredictRequest()",
            f"request.model_spec.name = {json.dumps(self.model_name)}",
            f"request.model_spec.signature_name = {json.dumps(self.signature_name)}",
        ]
        for info in self.inputs:
            prefix = f"request.inputs[{json.dumps(info.name)}].CopyFrom("
            value = self._python_value(info, "tf.make_tensor_proto", len(prefix), "")
            lines.append(f"{prefix}{value}){self._comment(info)}")
        lines += [
            "",
            f'channel = grpc.insecure_channel("{self.host}:{self.grpc_port}")',
            "stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)",
            f"response = stub.Predict(request, timeout={timeout})",
            "outputs = {name: tf.make_ndarray(tensor) for name, tensor in response.outputs.items()}",
            f"# {self.describe_answer()}",
        ]
        return "\n".join(lines)

    def _imports(self) -> List[str]:
        scann = ["import scann  # registers the ScaNN ops: without them this export does not load"]
        return scann if self.needs_scann else []

    def python_tf2(self) -> str:
        """Python calling the signature through ``tf.saved_model.load`` (no server)."""
        lines = self._imports() + [
            "import tensorflow as tf",
            "",
            f"loaded = tf.saved_model.load({json.dumps(self.display_dir)})",
            f"serve = loaded.signatures[{json.dumps(self.signature_name)}]",
            "inputs = {",
        ]
        for info in self.inputs:
            prefix = f"    {json.dumps(info.name)}: "
            value = self._python_value(info, "tf.constant", len(prefix), _INDENT)
            comment = "  # TF2 signatures want every input" if info.optional else ""
            lines.append(f"{prefix}{value},{comment}")
        lines += ["}", "outputs = serve(**inputs)", f"# {self.describe_answer()}"]
        return "\n".join(lines)

    def python_tf1(self) -> str:
        """Python running the signature in a TF1 session (``tf.compat.v1.saved_model.loader.load``)."""
        lines = self._imports() + [
            "import numpy as np",
            "import tensorflow as tf",
            "",
            "request = {",
        ]
        for info in self.inputs:
            prefix = f"    {json.dumps(info.name)}: "
            value = self._python_value(info, "np.array", len(prefix), _INDENT)
            lines.append(f"{prefix}{value},{self._comment(info)}")
        lines += [
            "}",
            "with tf.compat.v1.Session(graph=tf.Graph()) as session:",
            f'    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], {json.dumps(self.display_dir)})',
            f"    signature = meta_graph.signature_def[{json.dumps(self.signature_name)}]",
            "    feed = {signature.inputs[name].name: value for name, value in request.items()}",
            "    fetches = {name: info.name for name, info in signature.outputs.items()}",
            "    outputs = session.run(fetches, feed)",
            f"# {self.describe_answer()}",
        ]
        return "\n".join(lines)


def request_examples(
    export_dir: str,
    signature_name: str = "serving_default",
    rows: int = 2,
    display_dir: Optional[str] = None,
    model_name: Optional[str] = None,
    host: str = "localhost",
    rest_port: int = 8501,
    grpc_port: int = 8500,
) -> RequestExamples:
    """A realistic request for an export's signature, ready to render (REST, gRPC, Python, TF1).

    Args:
        export_dir: a version directory (``saved_models/two_tower/1``), or a model directory
            (its latest version is used).
        signature_name: the signature to call.
        rows: queries (or pairs) in the request, at most the rows the warmup record holds.
        display_dir: the path the Python snippets load (default: the version directory).
        model_name: TF Serving model name (default: the directory above the version).
        host, rest_port, grpc_port: the server the REST and gRPC renderings address.

    Returns:
        RequestExamples.

    Raises:
        ValueError: no SavedModel there, no such signature, or ``rows < 1``.
    """
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"rows={rows!r} must be a whole number >= 1")
    version_dir = _version_dir(export_dir)
    meta_graph = _meta_graph(version_dir)
    if signature_name not in meta_graph.signature_def:
        raise ValueError(f"{version_dir}: no signature {signature_name!r}; it has {signature_names(version_dir)}")
    signature = meta_graph.signature_def[signature_name]
    info = _export_info(version_dir)
    input_order = list(info.get("inputs") or {})
    declared = info.get("outputs") or []
    output_order = list(declared.values()) if isinstance(declared, dict) else list(declared)
    inputs = _tensor_infos(signature.inputs, input_order, signature.defaults)
    outputs = _tensor_infos(signature.outputs, output_order)

    warmup = _warmup_request(version_dir, signature_name)
    required = [i for i in inputs if not i.optional]
    source = "warmup" if warmup and all(i.name in warmup for i in required) else None
    values = warmup if source else _spec_values(version_dir, required, rows)
    if source is None:
        source = "feature_spec" if values and all(i.name in values for i in required) else "placeholder"
    request = {}
    for tensor in inputs:
        if tensor.name in values:
            request[tensor.name] = _as_array(values[tensor.name], tensor.dtype)[:rows]
        elif tensor.optional:
            request[tensor.name] = _as_array(tensor.default, tensor.dtype)
        else:
            request[tensor.name] = _placeholder(tensor, rows)
    return RequestExamples(
        export_dir=version_dir,
        display_dir=display_dir or version_dir,
        model_name=model_name or os.path.basename(os.path.dirname(os.path.abspath(version_dir))),
        version=int(os.path.basename(version_dir)) if os.path.basename(version_dir).isdigit() else 0,
        signature_name=signature_name,
        kind=info.get("kind"),
        inputs=inputs,
        outputs=outputs,
        request=request,
        source=source,
        needs_scann=_uses_scann(meta_graph),
        host=host,
        rest_port=rest_port,
        grpc_port=grpc_port,
    )
