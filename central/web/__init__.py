"""The operator console: server-rendered pages for the security centre, mounted by
``central.app.create_app`` (``mount.console_parts``).

Controllers are thin (``sign_in``, ``board``, ``alert_pages``, ``prefs_pages``,
``audit_pages``) and call the services of ``pages.Console``; ``access`` is the one table of
what each role may see and do; ``i18n`` holds the languages; ``templates/`` and
``static/`` (vendored assets listed in ``static/vendor/VENDOR.md``) are served as they are.
"""
