from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from interview import coding_views, dashboard_views, views
from interview.api import api
from interview.forms import LimitedPasswordResetForm, LoginForm

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(form_class=LoginForm), name="login"),
    path(
        "accounts/password_reset/",
        auth_views.PasswordResetView.as_view(form_class=LimitedPasswordResetForm),
        name="password_reset",
    ),
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
    path(
        "loops/<int:loop_id>/rounds/<int:position>/follow-ups",
        views.loop_follow_ups,
        name="loop-follow-ups",
    ),
    path(
        "loops/<int:loop_id>/rounds/<int:position>/follow-ups/<slug:follow_up_id>",
        views.loop_follow_up_answer,
        name="loop-follow-up-answer",
    ),
    path("loops/<int:loop_id>/items/<int:item_id>/answer/", views.loop_answer, name="loop-answer"),
    path("loops/<int:loop_id>/finish/", views.loop_finish, name="loop-finish"),
    path("loops/<int:loop_id>/scorecard/", views.loop_scorecard, name="loop-scorecard"),
    path("progress/", views.progress, name="progress"),
    path("review/", views.review, name="review"),
    path("review/rate/", views.review_rate, name="review-rate"),
    path("review/add/", views.review_add, name="review-add"),
    path("design/", include("interview.design.urls")),
    path("problems/", coding_views.problems_index, name="problems"),
    path("problems/<slug:slug>/", coding_views.problem_detail, name="problem"),
    path("problems/<slug:slug>/submit/", coding_views.problem_submit, name="problem-submit"),
    path("problems/<slug:slug>/run/", coding_views.problem_run, name="problem-run"),
    path("runs/<int:run_id>/results/", coding_views.run_results, name="run-results"),
    path("submissions/<int:submission_id>/", coding_views.submission_detail, name="submission"),
    path(
        "submissions/<int:submission_id>/results/",
        coding_views.submission_results,
        name="submission-results",
    ),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("profile/", dashboard_views.profile, name="profile"),
    path("profile/tokens/", dashboard_views.token_create, name="token-create"),
    path(
        "profile/tokens/<int:token_id>/revoke/", dashboard_views.token_revoke, name="token-revoke"
    ),
    path("lab/", include("lab.urls")),
    path("leaderboards/", coding_views.leaderboards, name="leaderboards"),
    path("leaderboards/<slug:slug>/", coding_views.leaderboard_problem, name="leaderboard"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
