"""`layerforge encode|classify|verify|export|extract_features|examples|upgrade`: a trained net
used outside training (on image files, as ONNX, as saved blob values) and file tools.
Registered with the `@command` of `layerforge.cli`, which imports this module when it builds
its parser; the work itself is done by the tools beside this module."""
from layerforge.cli import CommandError, at_least, command, log


# ---------------------------------------------------------------- a trained net on image files

def _image_net_arguments(p, blob=True):
    p.add_argument("--model", required=True, metavar="M", help="deploy net prototxt (phase RUN is used)")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    if blob:
        p.add_argument("--blob", default="feat", metavar="BLOB", help="encoding blob (default: feat)")
    p.add_argument("--scale", type=float, default=0.00390625, metavar="S",
                   help="pixel scale when the net has no transform_param (default: 1/256)")


_IMAGES_NOTE = ("Images are files or folders (searched recursively for PNG/JPEG), read grayscale "
                "or RGB as the net's input 'data' has 1 or 3 channels, resized to its height × "
                "width and preprocessed as the net's Input (else Data) layer transform_param says.")


def _encode_arguments(p):
    _image_net_arguments(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--out", required=True, metavar="F.npz|F.csv",
                   help="output: .npz (arrays 'images' and 'encodings') or .csv (image, e0, e1, ...)")


@command("encode", _encode_arguments, help="encode image files with a trained net",
         description="Run the net on each image and save the rows of --blob. " + _IMAGES_NOTE)
def cmd_encode(args):
    from layerforge.tools.encode import ImageEncoder, check_output, save_encodings

    check_output(args.out)
    encoder = ImageEncoder(args.model, args.weights, scale=args.scale)
    files, images = encoder.read(args.images)
    encodings = encoder.encode(images, args.blob)
    log.info("Encoded %d images, transformed %s", len(files), encoder.how)
    print(f"Wrote {save_encodings(args.out, files, encodings)} ({len(files)} encodings of "
          f"'{args.blob}', {encodings.shape[1]} values each)")
    return 0


def _classify_arguments(p):
    _image_net_arguments(p, blob=False)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--labels", metavar="labels.txt",
                   help="class names, one per line in label order (as `data images` writes; "
                        "default: the class numbers)")
    p.add_argument("--out", metavar="F.csv", help="also write every image's distance to every class")


@command("classify", _classify_arguments, help="classify image files by their nearest class centroid",
         description=(
    "Run the net on each image and print the class whose centroid (the net's Decode layer, "
    "e.g. after `layerforge centroids`) is nearest to its encoding, with the Euclidean "
    "distance, and the runner-up. " + _IMAGES_NOTE))
def cmd_classify(args):
    import numpy as np

    from layerforge.tools.encode import ImageEncoder, class_names

    encoder = ImageEncoder(args.model, args.weights, scale=args.scale)
    files, images = encoder.read(args.images)
    top = encoder.decode_top()
    distances = np.sqrt(encoder.encode(images, top))
    known = distances[0] < np.sqrt(np.finfo(np.float32).max) / 2   # an unknown class is at FLT_MAX
    if not known.any():
        raise CommandError(f"{args.weights}: the Decode layer knows no class centroid yet; "
                           f"run `layerforge centroids` first")
    names = class_names(args.labels, distances.shape[1])
    order = np.argsort(np.where(known, distances, np.inf), axis=1)
    for file, row, (first, second) in zip(files, distances, order[:, :2]):
        runner_up = f"; next {names[second]} at {row[second]:.4g}" if known[second] else ""
        print(f"{file}: {names[first]} (distance {row[first]:.4g}{runner_up})")
    if args.out:
        import csv

        with open(args.out, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["image", "class"] + [f"d_{name}" for name in names])
            writer.writerows([str(f), names[o[0]], *(f"{d:.6g}" if k else "" for d, k in zip(row, known))]
                             for f, o, row in zip(files, order, distances))
        print(f"Wrote {args.out}")
    return 0


def _verify_arguments(p):
    _image_net_arguments(p)
    p.add_argument("first", metavar="A", help="image file (or folder: every image of it)")
    p.add_argument("second", metavar="B", help="image file (or folder: every image of it)")
    p.add_argument("--threshold", type=float, metavar="T",
                   help="largest distance still called 'same' (default: half the smallest distance "
                        "between two class centroids of the net's Decode layer)")


@command("verify", _verify_arguments, help="same or different: compare two images' encodings",
         description=(
    "Encode A and B and print 'same' when the Euclidean distance between their encodings is at "
    "most the threshold, else 'different', with the distance and the threshold. Folders "
    "compare every image of A with every image of B. " + _IMAGES_NOTE))
def cmd_verify(args):
    import numpy as np

    from layerforge.tools.encode import ImageEncoder

    encoder = ImageEncoder(args.model, args.weights, scale=args.scale)
    threshold, why = args.threshold, "given"
    if threshold is None:
        threshold, why = encoder.centroid_spacing() / 2, "half the smallest centroid distance"
    files_a, images_a = encoder.read([args.first])
    files_b, images_b = encoder.read([args.second])
    a, b = encoder.encode(images_a, args.blob), encoder.encode(images_b, args.blob)
    for file_a, row_a in zip(files_a, a):
        for file_b, row_b in zip(files_b, b):
            distance = float(np.sqrt(((row_a - row_b) ** 2).sum()))
            verdict, sign = ("same", "<=") if distance <= threshold else ("different", ">")
            print(f"{file_a} {file_b}: {verdict} (distance {distance:.4g} {sign} threshold "
                  f"{threshold:.4g}, {why})")
    return 0


def _export_arguments(p):
    p.add_argument("--onnx", action="store_true",
                   help="write ONNX (opset 13; the only format, so also the default)")
    p.add_argument("model", metavar="M", help="deploy net prototxt (phase RUN is exported)")
    p.add_argument("weights", metavar="W", help=".caffemodel weights")
    p.add_argument("out", metavar="OUT.onnx", help="output file")


@command("export", _export_arguments, help="export a trained net to ONNX", description=(
    "Write the net's RUN phase with its weights as an ONNX model (checked by onnx's checker): "
    "inputs are the net's Input blobs, with its transform_param (mean, scale) applied as in "
    "Net.forward, so raw pixels go in; outputs are the net's outputs; the batch size is free. "
    "A layer with no ONNX mapping is an error naming it."))
def cmd_export(args):
    from layerforge.tools.export import export_net

    model = export_net(args.model, args.weights, args.out)
    graph = model.graph
    print(f"Wrote {args.out} (ONNX opset {model.opset_import[0].version}, {len(graph.node)} nodes; "
          f"inputs {', '.join(i.name for i in graph.input)}; outputs {', '.join(o.name for o in graph.output)})")
    return 0


def _extract_arguments(p):
    p.add_argument("--model", required=True, metavar="M", help="net prototxt (with its data layer)")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--blobs", required=True, metavar="LIST", help="comma-separated blob names, e.g. feat,ip1")
    p.add_argument("--out", required=True, metavar="F.npz|DB[,DB...]",
                   help="a .npz (one array per blob, plus 'label' when the net has that blob), "
                        "or one database folder per blob")
    p.add_argument("--iterations", type=at_least(1), default=1, metavar="N",
                   help="number of batches (default: 1)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "RUN"), default="TEST",
                   help="net phase (default: TEST)")
    p.add_argument("--backend", choices=("lmdb", "leveldb"), default="lmdb",
                   help="database kind for database outputs (default: lmdb)")


@command("extract_features", _extract_arguments, help="Caffe's extract_features: save blobs' values",
         description=(
    "Run N forward passes and save the values of the named blobs: to a .npz, or, as Caffe's "
    "tool does, to one database per blob holding one Datum per item (float_data, shaped "
    "C×H×W; an N×D blob gives D×1×1)."))
def cmd_extract_features(args):
    import numpy as np

    from layerforge.data.store import write_db
    from layerforge.net import Net
    from layerforge.tools.features import extract_features, feature_datums

    blobs = args.blobs.split(",")
    outs = args.out.split(",")
    to_npz = len(outs) == 1 and outs[0].endswith(".npz")
    if not to_npz and len(outs) != len(blobs):
        raise CommandError(f"--out names {len(outs)} databases for {len(blobs)} blobs; give one per "
                           f"blob, or one .npz")
    net = Net(args.model, args.phase, weights=args.weights)
    labels = "label" if to_npz and "label" in net.blobs and "label" not in blobs else None
    features = extract_features(net, blobs + ([labels] if labels else []), args.iterations)
    if to_npz:
        np.savez(outs[0], **features)
        print(f"Wrote {outs[0]} ({', '.join(f'{k} {v.shape}' for k, v in features.items())})")
        return 0
    for blob, out in zip(blobs, outs):
        write_db(out, feature_datums(features[blob]), args.backend)
        print(f"Wrote {out} ({len(features[blob])} items of '{blob}')")
    return 0


def _examples_arguments(p):
    p.add_argument("dir", metavar="DIR", help="folder to copy them into (created if missing)")
    p.add_argument("--force", action="store_true", help="overwrite example files that exist in DIR")


@command("examples", _examples_arguments, help="copy the example nets and solvers into a folder",
         description=(
    "Copy the example nets (DIR/prototxt) and solvers (DIR/solvers) shipped with layerforge. "
    "Their paths (prototxt/..., data/mnist/..., runs/...) are relative to DIR; run them from "
    "there, or from anywhere: a relative path that does not exist in the working directory is "
    "looked up beside the file that names it, then in the folder above."))
def cmd_examples(args):
    from layerforge.tools.examples import copy_examples

    written = copy_examples(args.dir, args.force)
    print(f"Copied {len(written)} files to {args.dir}: "
          f"{', '.join(str(p.relative_to(args.dir)) for p in written)}")
    print(f"Next: cd {args.dir} && layerforge data mnist --out data/mnist && "
          "layerforge train --solver solvers/mnist_siamese_solver.prototxt")
    return 0


# ---------------------------------------------------------------- files

def _upgrade_arguments(p):
    p.add_argument("source", metavar="NET_OR_WEIGHTS", help="a net prototxt or a .caffemodel in Caffe's V0/V1 format")
    p.add_argument("out", metavar="OUT", help="where to write the upgraded file (same format as the input)")


@command("upgrade", _upgrade_arguments, help="upgrade a legacy V0/V1 net or weights file", description=(
    "Caffe's upgrade_net_proto_text and upgrade_net_proto_binary: rewrite a V0/V1 net prototxt "
    "(`layers { type: CONVOLUTION }`) or .caffemodel in the current format, as every command "
    "does when it reads one. A .caffemodel is written binary, anything else as prototxt text."))
def cmd_upgrade(args):
    from layerforge.upgrade import upgrade_file

    changed = upgrade_file(args.source, args.out)
    print(f"Wrote {args.out}" + ("" if changed else f" ({args.source} was already in the current format)"))
    return 0

