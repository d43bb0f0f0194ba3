from django.urls import path

from grader.consumers import SubmissionProgressConsumer

websocket_urlpatterns = [
    path("ws/submissions/<int:submission_id>/", SubmissionProgressConsumer.as_asgi()),
]
