from django.contrib import admin
from django.urls import include, path

from interview import views
from interview.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("practice/", views.practice_index, name="practice"),
    path("practice/<slug:bank_id>/", views.practice_question, name="practice-question"),
    path("loops/", views.loops_index, name="loops"),
    path("loops/start/", views.loop_start, name="loop-start"),
    path("loops/<int:loop_id>/", views.loop_detail, name="loop-detail"),
    path("loops/<int:loop_id>/rounds/<int:position>/", views.loop_round, name="loop-round"),
    path(
        "loops/<int:loop_id>/rounds/<int:position>/submit/",
        views.loop_round_submit,
        name="loop-round-submit",
    ),
    path("loops/<int:loop_id>/items/<int:item_id>/answer/", views.loop_answer, name="loop-answer"),
    path("loops/<int:loop_id>/finish/", views.loop_finish, name="loop-finish"),
    path("loops/<int:loop_id>/scorecard/", views.loop_scorecard, name="loop-scorecard"),
    path("progress/", views.progress, name="progress"),
    path("review/", views.review, name="review"),
    path("design/", include("interview.design.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
