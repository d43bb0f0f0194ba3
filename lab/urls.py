from django.urls import path

from lab import views

urlpatterns = [
    path("", views.lab_index, name="lab"),
    path("runs/<int:run_id>/", views.lab_run, name="lab-run"),
]
