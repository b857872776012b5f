"""Reading and writing layerforge files: net/solver prototxt, binary weights (.caffemodel), solver state.

Text errors read `file:line:col: message`. Binary files are written to a temporary file
`.tmp-<pid>-*` and renamed, so an interrupted write never replaces a good file with a broken
one; the temporary files of killed processes are removed by the next write to that folder.
A write that fails (a full disk) is a ConfigError naming the file. Weights and solver states
get a checksum beside them, `<file>.sha256` (sha256sum's format; Caffe never reads it), that
read_binary checks when it is there.
"""
import contextlib
import difflib
import functools
import hashlib
import os
import re
import tempfile

import numpy as np
from google.protobuf import text_format
from google.protobuf.message import DecodeError

from layerforge.proto import layerforge_pb2 as pb


class ConfigError(ValueError):
    """A configuration, weights or state file is missing, malformed or does not fit."""


# ---------------------------------------------------------------- text

@functools.cache
def _string_field_names():
    """Names that are string fields everywhere they occur in the schema (safe to quote).
    The legacy V0/V1 layer messages are left out: their `type` is an enum (V1) and
    files in those formats come from Caffe's tools, which always quote strings."""
    kinds = {}

    def visit(descriptor):
        for field in descriptor.fields:
            kinds.setdefault(field.name, set()).add(field.type == field.TYPE_STRING)
        for nested in descriptor.nested_types:
            visit(nested)

    for name, message in pb.DESCRIPTOR.message_types_by_name.items():
        if name not in ("V0LayerParameter", "V1LayerParameter"):
            visit(message)
    return {name for name, is_string in kinds.items() if is_string == {True}}


_BARE_VALUE = re.compile(r'^(\s*)(\w+)(\s*:\s*)([^"\'\s{#][^#]*?)(\s*(#.*)?)$')


def _lenient(text):
    """MyCaffe writes some strings unquoted (`lr_policy: inv`, `snapshot_prefix: a/b`)
    and `ap_version: 11point`; quote or rename those so the strict parser accepts them."""
    strings = _string_field_names()
    lines = []
    for line in text.split("\n"):
        match = _BARE_VALUE.match(line)
        if match and match.group(2) in strings:
            indent, name, colon, value, rest = match.group(1, 2, 3, 4, 5)
            value = value.replace("\\", "\\\\").replace('"', '\\"')
            line = f'{indent}{name}{colon}"{value}"{rest}'
        elif match and match.group(2) == "ap_version" and match.group(4) == "11point":
            line = line.replace("11point", "elevenpoint")
        lines.append(line)
    return "\n".join(lines)


def _field_hint(message):
    """For 'no field named "x"' errors: the closest real field names."""
    found = re.search(r'Message type "([\w.]+)" has no field named "(\w+)"', message)
    if not found:
        return ""
    descriptor = pb.DESCRIPTOR.pool.FindMessageTypeByName(found.group(1))
    names = [f.name for f in descriptor.fields]
    close = difflib.get_close_matches(found.group(2), names, n=3, cutoff=0.6)
    return f" Did you mean {', '.join(close)}?" if close else ""


def parse_text(text, message, source="<string>"):
    """Parse prototxt `text` into `message` (cleared first); errors name source:line:col."""
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as strict_error:
        message.Clear()
        try:
            return text_format.Parse(_lenient(text), message)
        except text_format.ParseError:
            message.Clear()
        error = strict_error
    line, column = error.GetLine(), error.GetColumn()
    detail = str(error).split(" : ", 1)[-1]
    raise ConfigError(f"{source}:{line}:{column}: {detail}{_field_hint(detail)}") from None


def read_text_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read: {err}") from None


# Input files a net names, as (LayerParameter field, its field).
_NET_INPUTS = [("data_param", "source"), ("data_param", "mean_file"), ("transform_param", "mean_file"),
               ("image_data_param", "source"), ("image_data_param", "mean_file"),
               ("hdf5_data_param", "source"), ("window_data_param", "source"),
               ("window_data_param", "mean_file")]


def find_beside(path, folder):
    """Where a relative path written in a file in `folder` points to: as given when it exists
    relative to the working directory (Caffe's rule) or is absolute; else under `folder` or
    the folder above it (a solver in solvers/ naming prototxt/..., a net in prototxt/ naming
    data/...), whichever exists first; else as given, for the caller's not-found error."""
    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    for base in (folder, os.path.dirname(folder)):
        if os.path.exists(candidate := os.path.join(base, path)):
            return candidate
    return path


def resolve_net_paths(net, folder):
    """Point the input files of `net` (data sources, mean files) that do not exist relative to
    the working directory at the ones beside its file in `folder` (find_beside)."""
    for layer in net.layer:
        for message, field in _NET_INPUTS:
            if layer.HasField(message) and (value := getattr(getattr(layer, message), field)):
                setattr(getattr(layer, message), field, find_beside(value, folder))
    return net


def read_net(path):
    """NetParameter from a prototxt file; Caffe's legacy V0/V1 formats are upgraded, and
    relative input paths resolved as find_beside does."""
    from layerforge.upgrade import upgrade_net
    net = upgrade_net(parse_text(read_text_file(path), pb.NetParameter(), str(path)), str(path))
    return resolve_net_paths(net, os.path.dirname(os.path.abspath(path)))


def read_solver(path):
    """SolverParameter from a prototxt file. Relative net files and the input files of inline
    nets are resolved as find_beside does; so is snapshot_prefix, by its first folder (runs/
    of runs/lenet/lenet): taken from beside the solver when that folder exists there and not
    in the working directory, else left relative to the working directory (where it is
    created, as Caffe does)."""
    solver = parse_text(read_text_file(path), pb.SolverParameter(), str(path))
    folder = os.path.dirname(os.path.abspath(path))
    if solver.net:
        solver.net = find_beside(solver.net, folder)
    if solver.train_net:
        solver.train_net = find_beside(solver.train_net, folder)
    solver.test_net[:] = [find_beside(net, folder) for net in solver.test_net]
    for net in (solver.net_param, solver.train_net_param, *solver.test_net_param):
        resolve_net_paths(net, folder)
    first, _, rest = solver.snapshot_prefix.partition("/")
    if rest and (found := find_beside(first, folder)) != first:
        solver.snapshot_prefix = os.path.join(found, rest)
    return solver


def write_text(message, path):
    write_atomic(path, text_format.MessageToString(message).encode())


# ---------------------------------------------------------------- binary

def _new_file_mode(path):
    """The mode `open(path, "w")` would give: the existing file's, else 0o666 less the umask
    (mkstemp's temporary files are 0o600, which would leave snapshots unreadable to others)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def process_alive(pid):
    """Is there a process with this PID (ours or another user's)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_TEMPORARY = re.compile(r"^\.tmp-(\d+)-")


def remove_stale_temporaries(folder):
    """Remove the `.tmp-<pid>-*` files that processes no longer alive left in `folder`."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = _TEMPORARY.match(name)
        if match and int(match.group(1)) != os.getpid() and not process_alive(int(match.group(1))):
            try:
                os.unlink(os.path.join(folder, name))
            except OSError:
                continue


def write_atomic(path, payload, before_replace=None):
    """Write bytes to `path` through a temporary file in the same folder and a rename; an
    OSError (e.g. the disk is full) is a ConfigError naming `path`, with `path` untouched.
    `before_replace()` runs once the bytes are safely on disk, just before the rename."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    temporary = None
    try:
        os.makedirs(folder, exist_ok=True)
        remove_stale_temporaries(folder)
        handle, temporary = tempfile.mkstemp(prefix=f".tmp-{os.getpid()}-", dir=folder)
        os.fchmod(handle, _new_file_mode(path))
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        if before_replace is not None:
            before_replace()
        os.replace(temporary, path)
    except BaseException as err:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        if isinstance(err, OSError):
            raise ConfigError(f"{path}: cannot write {len(payload):,} bytes: {err.strerror or err}") from err
        raise


def checksum_path(path):
    return f"{os.fspath(path)}.sha256"


def write_checksummed(path, payload):
    """write_atomic, then `<path>.sha256` with the payload's SHA-256. An older checksum is
    removed just before the rename, so it never describes another file (and stays when the
    write fails before it)."""
    def remove_old_checksum():
        with contextlib.suppress(FileNotFoundError):
            os.unlink(checksum_path(path))

    write_atomic(path, payload, before_replace=remove_old_checksum)
    digest = hashlib.sha256(payload).hexdigest()
    write_atomic(checksum_path(path), f"{digest}  {os.path.basename(os.fspath(path))}\n".encode())


def _check_checksum(path, payload):
    """When `<path>.sha256` exists, the payload must match it (files without one, such as
    Caffe's, are read as they are)."""
    try:
        with open(checksum_path(path), encoding="utf-8") as handle:
            expected = handle.read().split()[:1]
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{checksum_path(path)}: cannot read the checksum: {err}") from None
    if expected != [hashlib.sha256(payload).hexdigest()]:
        raise ConfigError(f"{path}: corrupt: its SHA-256 does not match {checksum_path(path)} (bytes changed or "
                          f"lost since it was written); use another snapshot, or delete the .sha256 "
                          f"file if the file was replaced on purpose")


def read_binary(path, message):
    """Parse a binary protobuf file; a missing, truncated or corrupt file is a ConfigError."""
    try:
        with open(path, "rb") as handle:
            payload = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    _check_checksum(path, payload)
    try:
        message.ParseFromString(payload)
    except (DecodeError, RuntimeError) as err:
        raise ConfigError(f"{path}: not a valid {type(message).__name__} file "
                          f"(truncated or corrupt: {err})") from None
    return message


def array_to_blobproto(array, proto=None):
    """BlobProto with `shape`; float64 arrays go to double_data, everything else to data.
    The values go in as a list: protobuf takes one 4x faster than a numpy array it iterates."""
    proto = proto if proto is not None else pb.BlobProto()
    array = np.asarray(array)
    proto.shape.dim.extend(array.shape)
    if array.dtype == np.float64:
        proto.double_data.extend(array.ravel().tolist())
    else:
        proto.data.extend(array.astype(np.float32, copy=False).ravel().tolist())
    return proto


def blobproto_to_array(proto, where="blob"):
    """numpy array of a BlobProto (shape or legacy num/channels/height/width). A blob with
    neither is an error, as in Caffe (which refuses to copy it into a shaped blob)."""
    legacy = ("num", "channels", "height", "width")
    if proto.HasField("shape"):
        shape = tuple(proto.shape.dim)
    elif any(proto.HasField(name) for name in legacy):
        shape = tuple(getattr(proto, name) for name in legacy)
    else:
        raise ConfigError(f"{where}: the blob has no shape (neither `shape` nor num/channels/height/width)")
    if len(proto.double_data):
        values = np.array(proto.double_data, dtype=np.float64)
    else:
        values = np.array(proto.data, dtype=np.float32)
    if values.size != int(np.prod(shape)):
        raise ConfigError(f"{where}: shape {shape} needs {int(np.prod(shape))} values, "
                          f"the file holds {values.size}")
    return values.reshape(shape)


def read_weights(path):
    """NetParameter of a .caffemodel weights file (layers with name and blobs); Caffe's
    legacy V0/V1 weights are upgraded."""
    from layerforge.upgrade import upgrade_net
    net = upgrade_net(read_binary(path, pb.NetParameter()), str(path))
    if not net.layer:
        raise ConfigError(f"{path}: holds no layers: not a layerforge or Caffe weights file")
    return net
