"""The generated schema module (layerforge_pb2) and what differs between protobuf runtimes."""


def is_repeated(field):
    """Is FieldDescriptor `field` repeated? (protobuf >= 5 has `is_repeated`; 4.x only `label`.)"""
    repeated = getattr(field, "is_repeated", None)
    return repeated if repeated is not None else field.label == field.LABEL_REPEATED
