"""2-D scatter of a net's encodings (e.g. the Siamese `feat` blob), coloured by class."""
import numpy as np

from layerforge.net import PHASE_NAMES, NetError


def collect_encodings(net, blob, label_blob=None, iterations=1):
    """Run `iterations` forward passes; return (N×D encodings, N labels or None).
    A label blob of N×K labels (paired data) gives column 0, the label of the encoding's image."""
    for name in (blob, label_blob):
        if name is not None and name not in net.blobs:
            raise NetError(f"{net.source}: the net has no blob '{name}' in phase "
                           f"{PHASE_NAMES[net.phase]}; blobs: {', '.join(net.blobs)}")
    encodings, labels = [], []
    for _ in range(iterations):
        net.forward()
        data = net.blobs[blob].data
        if data.ndim < 2:
            raise NetError(f"blob '{blob}' has shape {data.shape}; a 2-D scatter needs N×D "
                           f"encodings with D at least 2")
        encodings.append(data.reshape(data.shape[0], -1).copy())
        if label_blob is not None:
            label = net.blobs[label_blob].data
            label = label.reshape(label.shape[0], -1)[:, 0]
            if label.shape[0] != data.shape[0]:
                raise NetError(f"blob '{label_blob}' has {label.shape[0]} rows but '{blob}' has "
                               f"{data.shape[0]}; give a label blob with one label per encoding")
            labels.append(label.copy())
    return np.concatenate(encodings), (np.concatenate(labels) if labels else None)


def plot_embedding(encodings, labels, out_path, title):
    """Scatter the first two dimensions into a PNG; returns a note when D > 2 dims were cut."""
    import matplotlib
    from matplotlib.figure import Figure   # no pyplot: renders with Agg, no display needed

    dims = encodings.shape[1]
    if dims < 2:
        raise NetError(f"{title}: encodings have {dims} dimension; a 2-D scatter needs at least 2")
    note = f"{dims}-dimensional; showing the first 2" if dims > 2 else ""
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    if labels is None:
        ax.scatter(encodings[:, 0], encodings[:, 1], s=6, alpha=0.6)
    else:
        classes = np.unique(labels)
        cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
        for index, label in enumerate(classes):
            chosen = labels == label
            ax.scatter(encodings[chosen, 0], encodings[chosen, 1], s=6, alpha=0.7,
                       color=cmap(index % cmap.N), label=f"{label:g}")
        ax.legend(title="class", markerscale=3, fontsize="small", loc="best")
    ax.set_xlabel("dimension 0")
    ax.set_ylabel("dimension 1")
    ax.set_title(f"{title} ({len(encodings)} encodings{', ' + note if note else ''})")
    figure.savefig(out_path, dpi=100)
    return note
