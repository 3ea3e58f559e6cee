"""Faces at central: the watchlist gallery of wanted persons and matching against it.

Only the matching core and enrolment live here for now; the persons watchlist (REST, CLI,
two-person confirmation, console) attaches to :class:`central.faces.matcher.FaceGallery`
and :func:`central.faces.enrol.enrol_photo`. See docs/faces.md.
"""
