"""Faces at central: the persons watchlist, matching at ingest and the two-person rule.

- ``matcher``: ``FaceGallery`` (cosine top-k) and the calibrated ``DEFAULT_THRESHOLD``.
- ``enrol``: one photo -> one embedding with the edge's face chain, or a clear refusal.
- ``service``: ``FaceWatchlist`` (enrol, list, expire, remove; the live gallery).
- ``candidates``: ``FaceCandidates`` (match at ingest, crops, confirm / reject).
- ``bulk``, ``cli``, ``client``: bulk enrolment and ``varta central persons``.
- ``store``, ``model``: the SQL and the types.

See docs/faces.md.
"""
