from django.urls import path, re_path

from grader.consumers import UnknownPathConsumer
from grader.routing import websocket_urlpatterns as grader_websocket_urlpatterns
from interview.consumers import DesignFollowUpConsumer, NotificationConsumer

websocket_urlpatterns = [
    path("ws/notifications/", NotificationConsumer.as_asgi()),
    path("ws/loops/rounds/<int:round_id>/follow-ups/", DesignFollowUpConsumer.as_asgi()),
    *grader_websocket_urlpatterns,
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
