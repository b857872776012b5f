"""2-D scatter of a net's encodings (e.g. the Siamese `feat` blob), coloured by class, with the
Decode layer's class centroids marked; wider encodings are projected with PCA."""
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


def decode_centroids(net, blob):
    """(centroids K×D, their classes K) of the net's first Decode layer reading `blob`, the
    classes it has seen only; None when no Decode layer reads it or it keeps no centroids."""
    from layerforge.tools.centroids import decode_layers

    try:
        found = [layer for layer, source in decode_layers(net) if source == blob]
    except NetError:
        return None
    if not found or getattr(found[0], "knn", False):
        return None
    counts = found[0].blobs[1].data
    known = np.flatnonzero(counts > 0)
    return found[0].blobs[0].data[known].reshape(len(known), -1).astype(np.float64), known


def project(encodings, *others):
    """Points in 2-D: the encodings themselves when D = 2, else their projection on the first
    two principal components (PCA over the encodings); `others` (e.g. centroids) go through
    the same map. Returns (points, projected others, axis labels, note or "")."""
    dims = encodings.shape[1]
    if dims < 2:
        raise NetError(f"encodings have {dims} dimension; a 2-D scatter needs at least 2")
    if dims == 2:
        return encodings, others, ("dimension 0", "dimension 1"), ""
    mean = encodings.mean(axis=0)
    _, singular, axes = np.linalg.svd(encodings - mean, full_matrices=False)
    share = singular ** 2 / max(float(np.sum(singular ** 2)), np.finfo(float).tiny)
    basis = axes[:2].T
    labels = tuple(f"principal component {i + 1} ({100 * share[i]:.0f} % of variance)" for i in range(2))
    return ((encodings - mean) @ basis, tuple((o - mean) @ basis for o in others), labels,
            f"{dims}-dimensional; projected on its first 2 principal components (PCA)")


def embedding_figure(encodings, labels, title, centroids=None):
    """(Figure, note): the encodings scattered in 2-D (project), coloured by class, with the
    class centroids (centroids, classes) marked as large crosses; the title says if PCA was used."""
    import matplotlib
    from matplotlib.figure import Figure   # no pyplot: renders with Agg, no display needed

    extra = (centroids[0],) if centroids is not None else ()
    points, projected, axis_labels, note = project(np.asarray(encodings, np.float64), *extra)
    figure = Figure(figsize=(7, 6), layout="constrained")
    ax = figure.subplots()
    classes = np.unique(labels) if labels is not None else np.array([])
    if centroids is not None:
        classes = np.union1d(classes, centroids[1])
    cmap = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    colour = {label: cmap(index % cmap.N) for index, label in enumerate(classes)}
    if labels is None:
        ax.scatter(points[:, 0], points[:, 1], s=6, alpha=0.6)
    else:
        for label in np.unique(labels):
            chosen = labels == label
            ax.scatter(points[chosen, 0], points[chosen, 1], s=6, alpha=0.7, color=colour[label],
                       label=f"{label:g}")
    if centroids is not None and len(centroids[1]):
        ax.scatter(projected[0][:, 0], projected[0][:, 1], s=160, marker="X", linewidths=1.2,
                   edgecolors="black", color=[colour[c] for c in centroids[1]], label="centroids")
    if labels is not None or centroids is not None:
        ax.legend(title="class", markerscale=1.5, fontsize="small", loc="best")
    ax.set_xlabel(axis_labels[0])
    ax.set_ylabel(axis_labels[1])
    how = f"PCA of {encodings.shape[1]}-D {title}" if note else title
    ax.set_title(f"{how} ({len(encodings)} encodings"
                 f"{', Decode centroids marked' if centroids is not None and len(centroids[1]) else ''})")
    return figure, note


def plot_embedding(encodings, labels, out_path, title, centroids=None):
    """Write embedding_figure to a PNG; returns the note ("" when nothing was projected)."""
    figure, note = embedding_figure(encodings, labels, title, centroids)
    figure.savefig(out_path, dpi=100)
    return note
