"""Protobuf messages no maintained package ships for a receiver: remote-write 1.0 and ``google.rpc.Status``.

Built at import from their field lists with the protobuf runtime, in a pool
of their own: no generated module to keep in step with a protoc version, and
no clash with another library registering the same names in the default
pool. Field numbers and types are those of Prometheus' ``prompb/types.proto``
and ``prompb/remote.proto`` (remote-write 1.0: samples only; exemplars,
native histograms and metadata are skipped as unknown fields) and of
``google/rpc/status.proto`` (``details`` left out: we send none).

>>> request = WriteRequest()
>>> series = request.timeseries.add()
>>> series.labels.add(name="__name__", value="up")
name: "__name__"
value: "up"
<BLANKLINE>
>>> series.samples.add(value=1.0, timestamp=1795323600000)
value: 1
timestamp: 1795323600000
<BLANKLINE>
>>> decoded = WriteRequest.FromString(request.SerializeToString())
>>> decoded.timeseries[0].labels[0].value, decoded.timeseries[0].samples[0].timestamp
('up', 1795323600000)
>>> Status.FromString(Status(code=3, message="bad").SerializeToString()).message
'bad'
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
# name -> [(field, number, type, repeated, message type)]
_REMOTE_WRITE: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "WriteRequest": [("timeseries", 1, _F.TYPE_MESSAGE, True, ".prometheus.TimeSeries")],
    "TimeSeries": [("labels", 1, _F.TYPE_MESSAGE, True, ".prometheus.Label"),
                   ("samples", 2, _F.TYPE_MESSAGE, True, ".prometheus.Sample")],
    "Label": [("name", 1, _F.TYPE_STRING, False, ""), ("value", 2, _F.TYPE_STRING, False, "")],
    "Sample": [("value", 1, _F.TYPE_DOUBLE, False, ""), ("timestamp", 2, _F.TYPE_INT64, False, "")],
}
_STATUS: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "Status": [("code", 1, _F.TYPE_INT32, False, ""), ("message", 2, _F.TYPE_STRING, False, "")],
}

_pool = descriptor_pool.DescriptorPool()


def _messages(file_name: str, package: str, shapes: dict[str, list[tuple[str, int, int, bool, str]]]) -> None:
    proto = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax="proto3")
    for message_name, fields in shapes.items():
        message = proto.message_type.add(name=message_name)
        for field_name, number, kind, repeated, type_name in fields:
            message.field.add(name=field_name, number=number, type=kind, type_name=type_name or None,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    _pool.Add(proto)


def _class(full_name: str) -> Any:
    return message_factory.GetMessageClass(_pool.FindMessageTypeByName(full_name))


_messages("outagewatch/prompb/remote.proto", "prometheus", _REMOTE_WRITE)
_messages("outagewatch/google/rpc/status.proto", "google.rpc", _STATUS)

WriteRequest: Any = _class("prometheus.WriteRequest")
Status: Any = _class("google.rpc.Status")
