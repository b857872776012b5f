"""`layerforge draw|plot|embed|oneshot|centroids`: pictures of a net and of its training, and
evaluations of its encodings (one-shot accuracy, class centroids). Registered with the
`@command` of `layerforge.cli`, which imports this module when it builds its parser; the work
itself is done by the tools beside this module."""
import os

from layerforge.cli import CommandError, at_least, command, log


# ---------------------------------------------------------------- pictures

def _draw_arguments(p):
    p.add_argument("net", metavar="NET", help="net prototxt")
    p.add_argument("out", metavar="OUT", help="output file: out.png, out.svg or out.dot")
    p.add_argument("--phase", choices=("ALL", "TRAIN", "TEST", "RUN"), default="ALL",
                   help="draw only this phase's layers (default: ALL layers)")
    p.add_argument("--rankdir", choices=("auto", "LR", "TB", "RL", "BT"), default="auto",
                   help="graph direction (default: auto, top to bottom for a long net, left to "
                        "right for a short one)")


@command("draw", _draw_arguments, help="draw a net's graph", description=(
    "Draw layers (boxes) and blobs (ellipses) with pydot; parameters shared by name (tied "
    "weights) are dashed blue edges. The output extension picks the format: .dot needs "
    "nothing, .png/.svg/.pdf need Graphviz's `dot` program. Only OUT is written."))
def cmd_draw(args):
    from layerforge.tools.draw import draw_net

    phase = None if args.phase == "ALL" else args.phase
    print(f"Wrote {draw_net(args.net, args.out, phase, args.rankdir)}")
    return 0


def _plot_arguments(p):
    p.add_argument("log", metavar="LOG", help="training log: .jsonl, or a Caffe/layerforge text log")
    p.add_argument("--out", metavar="PNG", help="output PNG (default: LOG with .png)")


@command("plot", _plot_arguments, help="plot loss and test curves from a training log", description=(
    "Plot train/test loss (top) and the other test outputs (bottom) against iteration, from "
    "the JSON-lines log of `layerforge train` or a Caffe text log, to a PNG."))
def cmd_plot(args):
    from layerforge.tools.plot import plot_log

    out = args.out or os.path.splitext(os.fspath(args.log))[0] + ".png"
    print(f"Wrote {plot_log(args.log, out)}")
    return 0


def _embed_arguments(p):
    p.add_argument("--model", required=True, metavar="M", help="net prototxt")
    p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--blob", required=True, metavar="BLOB", help="blob with N×D encodings, e.g. feat")
    p.add_argument("--label-blob", metavar="BLOB",
                   help="blob with the labels (N, or N×K with the encoding's label in column 0; "
                        "default: 'label' if the net has it)")
    p.add_argument("--iterations", type=at_least(1), default=10, metavar="N",
                   help="batches to collect (default: 10)")
    p.add_argument("--phase", choices=("TRAIN", "TEST", "RUN"), default="TEST",
                   help="net phase (default: TEST)")
    p.add_argument("--images", metavar="DIR",
                   help="encode this folder's images instead (one sub-folder per class; the net "
                        "runs in phase RUN and its Input takes them, preprocessed as it says)")
    p.add_argument("--out", default="embed.png", metavar="PNG", help="output PNG (default: embed.png)")


@command("embed", _embed_arguments, help="scatter-plot a net's encodings by class", description=(
    "Run the net, collect the encodings in --blob and their labels, and scatter them coloured "
    "by class to a PNG, with the class centroids of a Decode layer reading --blob marked. "
    "Encodings wider than 2 are projected on their first two principal components (PCA; the "
    "title says so). The encodings come from the net's own data layer (--phase TEST), or from "
    "the images of --images; a net whose inputs nobody feeds (phase RUN without --images) is "
    "refused rather than plotting the encoding of zeros."))
def cmd_embed(args):
    import numpy as np

    from layerforge.net import Net
    from layerforge.tools.embed import collect_encodings, decode_centroids, plot_embedding

    label_blob = args.label_blob
    if args.images:
        from layerforge.tools.encode import ImageEncoder

        encoder = ImageEncoder(args.model, args.weights)
        files, images = encoder.read([args.images])
        encodings, net = encoder.encode(images, args.blob), encoder.net
        folders = [f.relative_to(args.images).parts[0] for f in files]
        names = sorted(set(folders))
        labels, label_blob = np.array([names.index(f) for f in folders]), f"folders of {args.images}"
    else:
        net = Net(args.model, args.phase, weights=args.weights)
        if net.inputs:
            raise CommandError(f"{args.model}: in phase {args.phase} the net reads its Input blobs "
                               f"({', '.join(net.inputs)}), which nothing feeds here; use --phase TEST "
                               f"(its Data layer) or --images DIR")
        if label_blob is None and "label" in net.blobs:
            label_blob = "label"
        encodings, labels = collect_encodings(net, args.blob, label_blob, args.iterations)
    if labels is None:
        log.warning("No label blob: the points are not coloured by class; pass --label-blob "
                    "with the data layer's label top (e.g. sim)")
    note = plot_embedding(encodings, labels, args.out, f"'{args.blob}' of {net.name or args.model}",
                          decode_centroids(net, args.blob))
    if note:
        print(f"Note: '{args.blob}' is {note}")
    print(f"Wrote {args.out} ({len(encodings)} encodings of '{args.blob}'"
          f"{f', classes from {label_blob!r}' if labels is not None else ''})")
    return 0


# ---------------------------------------------------------------- encodings of images

def _encoder_arguments(p, several=False):
    """--model, --weights and --scale of the commands that encode images; with `several`,
    --model and --weights may repeat (oneshot's models scored together)."""
    if several:
        p.add_argument("--model", required=True, action="append", metavar="M",
                       help="net prototxt (phase RUN is used); repeat it with --weights to score "
                            "several models together, or give one for all the --weights")
        p.add_argument("--weights", required=True, action="append", metavar="W",
                       help=".caffemodel weights; repeat for several models")
    else:
        p.add_argument("--model", required=True, metavar="M", help="net prototxt (phase RUN is used)")
        p.add_argument("--weights", required=True, metavar="W", help=".caffemodel weights")
    p.add_argument("--scale", type=float, default=0.00390625, metavar="S",
                   help="pixel scale when the model has no transform_param (default: 1/256)")


def _model_pairs(args):
    """[(model, weights)] of repeated --model/--weights: one model for all the weights, or
    the k-th model with the k-th weights."""
    models = args.model * len(args.weights) if len(args.model) == 1 else args.model
    if len(models) != len(args.weights):
        raise CommandError(f"give one --model for all the --weights or one per --weights, got "
                           f"{len(args.model)} --model and {len(args.weights)} --weights")
    return list(zip(models, args.weights))


def _run_net(model, weights):
    """The RUN net of `model` with `weights`, checked to have an Input blob 'data' for images."""
    from layerforge.net import Net

    net = Net(model, "RUN", weights=weights)
    if "data" not in net.inputs:
        raise CommandError(f"{model}: no Input blob 'data' in phase RUN to feed the images to "
                           f"(inputs: {', '.join(net.inputs) or 'none'})")
    return net


def _labelled_images(args, net):
    """(images, labels) of args.source (LMDB) or args.images (folder, read at the size of the
    net's 'data'), only of args.classes when given."""
    import numpy as np

    from layerforge.tools import oneshot

    shape = net.blobs["data"].shape
    classes = args.classes.split(",") if args.classes else None
    if getattr(args, "images", None):
        size, gray = (shape[2:], shape[1] == 1) if len(shape) == 4 else (None, False)
        images, labels = oneshot.load_folder_images(args.images, classes, size, gray)
    else:
        images, labels = oneshot.load_lmdb_images(args.source, classes)
    found, counts = np.unique(labels, return_counts=True)
    log.info("Encoding %d images of classes %s (%s per class)", len(images),
             ", ".join(map(str, found)), "-".join(map(str, sorted({counts.min(), counts.max()}))))
    return images, labels


def _input_transform(args, model, net, images):
    """The transform of raw `images` for the net's 'data' (see oneshot.input_transform), checked
    to give the shape the net takes."""
    from layerforge import io
    from layerforge.tools import oneshot

    transform, item_shape, how = oneshot.input_transform(io.read_net(model), args.scale, images.shape[1:])
    shape = net.blobs["data"].shape
    if tuple(item_shape) != tuple(shape[1:]):
        raise CommandError(f"{model}: the images are {'x'.join(map(str, item_shape))} after the transform "
                           f"but the net's input 'data' is {'x'.join(map(str, shape[1:]))} per item")
    log.info("%s: images transformed %s", model, how)
    return transform


def _encoder(args, models, images):
    """(encode, description) of `models`, (model path, RUN net) pairs: one net's args.blob
    (default feat), or several nets' concatenated (oneshot.concatenated_encoder)."""
    from layerforge.tools import oneshot

    blob = args.blob or "feat"
    encoders = [oneshot.net_encoder(net, blob, transform=_input_transform(args, model, net, images))
                for model, net in models]
    if len(encoders) == 1:
        return encoders[0], f"Euclidean distance of '{blob}'"
    return (oneshot.concatenated_encoder(encoders),
            f"Euclidean distance of the {len(encoders)} models' '{blob}' concatenated, each scaled to "
            f"unit mean norm")


def _oneshot_arguments(p):
    _encoder_arguments(p, several=True)
    p.add_argument("--ways", type=at_least(2), default=5, metavar="N",
                   help="classes per trial (default: 5; with --runs, the runs decide)")
    p.add_argument("--trials", type=at_least(1), default=1000, metavar="T",
                   help="number of trials (default: 1000; with --runs, one per test item)")
    p.add_argument("--blob", metavar="BLOB",
                   help="encoding blob (default: feat), or a verification net's score blob "
                        "(default: its output)")
    images = p.add_mutually_exclusive_group(required=True)
    images.add_argument("--source", metavar="LMDB", help="LMDB of Datum records (labels are the classes)")
    images.add_argument("--images", metavar="DIR",
                        help="folder with one sub-folder of images per class (resized to the "
                             "net's input size, grayscale for 1 channel)")
    images.add_argument("--runs", metavar="DIR",
                        help="Lake's one-shot runs: DIR/runNN/{class_labels.txt,training/,test/}; each "
                             "test item is classified among its run's training images")
    images.add_argument("--alphabets", metavar="A,B,...",
                        help="Omniglot alphabets (of the zips in --from): N-way trials within one "
                             "alphabet, supports by one drawer and the query by another")
    p.add_argument("--from", dest="zip_dir", metavar="ZIPDIR",
                   help="with --alphabets: folder of Omniglot .zip files, or one zip "
                        "(default: $LAYERFORGE_OMNIGLOT)")
    p.add_argument("--classes", metavar="LIST",
                   help="comma-separated classes to use, e.g. 5,6,7,8,9 (labels, or folder names "
                        "with --images; default: all)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")


@command("oneshot", _oneshot_arguments, help="N-way one-shot accuracy on held-out classes", description=(
    "One-shot evaluation as in Koch et al.: each trial has N support images, one per class, and a "
    "query of one of those classes, classified by the nearest support encoding (Euclidean, ties "
    "broken at random) or, for a verification net (RUN inputs 'data' and 'data_p'), by the highest "
    "score of the pair. Trials come from labelled images (--source, --images: N random classes, "
    "the query another image of the first), from Omniglot alphabets (--alphabets: within one "
    "alphabet, as Lake draws them) or from Lake's run folders (--runs); Omniglot images are read "
    "as `layerforge data omniglot` reads them, resized to the net's input. Prints the accuracy "
    "over the trials and its 95% Wilson score interval. The net runs in phase RUN: its Input "
    "blob 'data' takes the images, transformed as its Input layer's transform_param says (else "
    "as its Data layer's does in TEST, else scaled by --scale); every image is encoded once. "
    "Several encoders (--model/--weights repeated, or one --model for several --weights) are "
    "scored together: each model's encodings are scaled to unit mean norm over the images and "
    "concatenated. Seeded, so runs repeat."))
def cmd_oneshot(args):
    import numpy as np

    from layerforge.tools import oneshot as tool

    models = [(model, _run_net(model, weights)) for model, weights in _model_pairs(args)]
    if args.runs or args.alphabets:
        result = _omniglot_one_shot(args, models)
    else:
        images, labels = _labelled_images(args, models[0][1])
        encode, by = _encoder(args, models, images)
        log.info("Classified by %s", by)
        result = tool.one_shot_accuracy(encode, images, labels, args.ways, args.trials,
                                        np.random.default_rng(args.seed))
    print(result.line())
    return 0


def _omniglot_one_shot(args, models):
    """OneShotResult of --runs or --alphabets trials, by encodings or by a verification net."""
    import numpy as np

    from layerforge.tools import oneshot as tool

    model, net = models[0]
    shape = net.blobs["data"].shape
    if len(shape) != 4 or shape[1] != 1:
        raise CommandError(f"{model}: Omniglot trials need an Input blob 'data' of N x 1 x H x W "
                           f"in phase RUN, not {'x'.join(map(str, shape))}")
    verification = "data_p" in net.inputs
    if verification and len(models) > 1:
        raise CommandError(f"{model} is a verification net (inputs 'data' and 'data_p'): "
                           f"only encoders can be scored together")
    rng = np.random.default_rng(args.seed)
    if args.runs:
        images, query, support = tool.read_runs(args.runs, tuple(shape[2:]))
        where = f"runs in {args.runs}"
    else:
        alphabets = [a.strip() for a in args.alphabets.split(",") if a.strip()]
        images, query, support = tool.alphabet_trials(args.zip_dir, alphabets, tuple(shape[2:]),
                                                      args.ways, args.trials, rng)
        where = f"alphabets {', '.join(alphabets)}"
    if verification:
        score = tool.pair_scores(net, images, _input_transform(args, model, net, images), args.blob)
        by = "verification score"
    else:
        encode, by = _encoder(args, models, images)
        score = tool.euclidean_scores(encode(images))
    log.info("%d trials of %s (%d images, %dx%d), classified by %s", len(query), where,
             len(images), shape[2], shape[3], by)
    return tool.score_trials(score, query, support, rng)


def _centroids_arguments(p):
    _encoder_arguments(p)
    images = p.add_mutually_exclusive_group(required=True)
    images.add_argument("--source", metavar="LMDB", help="LMDB of labelled Datum records, e.g. the training set")
    images.add_argument("--images", metavar="DIR",
                        help="folder with one sub-folder of images per class; class k is the k-th "
                             "sub-folder in sorted order, as `data images` labels them")
    p.add_argument("--out", metavar="W", help="output .caffemodel (default: overwrite --weights)")
    p.add_argument("--classes", metavar="LIST",
                   help="comma-separated classes to use: labels, or folder names with --images "
                        "(default: all)")


@command("centroids", _centroids_arguments, help="set a net's Decode centroids to exact class means",
         description=(
    "Encode every image of --source (or --images) with the trained net (phase RUN, transformed "
    "as its Input or Data layer's transform_param says) and set each Decode layer's centroids to the mean encoding of each "
    "class, in place of the moving average learned during training. Writes the weights with "
    "these centroids to --out (default: over --weights)."))
def cmd_centroids(args):
    import numpy as np

    from layerforge.tools import centroids as tool, oneshot

    net = _run_net(args.model, args.weights)
    images, labels = _labelled_images(args, net)
    transform = _input_transform(args, args.model, net, images)
    if args.images:   # folder names -> the labels `data images` gives them
        folders = sorted(entry.name for entry in os.scandir(args.images) if entry.is_dir())
        labels = np.array([folders.index(name) for name in labels])
    done = tool.set_class_centroids(
        net, lambda blob: oneshot.net_encoder(net, blob, transform=transform), images, labels)
    out = args.out or args.weights
    net.save(out)
    for name, counts in done.items():
        print(f"{name}: centroids of {sum(counts > 0)} classes from {int(counts.sum())} images -> {out}")
    return 0
