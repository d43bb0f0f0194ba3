"""The browser tests' server: the site's ASGI application, with Django's content-type cache
emptied before every HTTP request.

The test database is flushed between tests, and the flush creates the content types again
under new ids; a server that outlives a test would otherwise keep the old ids and write the
admin's change log (LogEntry) against rows that no longer exist."""

from django.apps import apps

from interview.asgi import application as site_application  # sets Django up

ContentType = apps.get_model("contenttypes", "ContentType")


async def application(scope, receive, send) -> None:
    """The site's application; an HTTP request first forgets the cached content-type ids."""
    if scope["type"] == "http":
        ContentType.objects.clear_cache()
    await site_application(scope, receive, send)
