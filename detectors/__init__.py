"""Pure streaming detectors: no Kafka, ClickHouse or Faust here.

One detector per module (``volume``, ``ratio``, ``cusum``, ``server``), each
with ``learn_one``/``score_one`` (score in [0, 1], 0.5 = its alarm line) and
``to_state``/``from_state``; ``ensemble`` turns them into
``core.schemas.Decision``s; ``registry.RoomDetectors`` keeps one
ensemble per (scope, key); ``evaluation`` scores alerts against labels;
``cli`` is ``outagewatch detect-csv``.
"""
