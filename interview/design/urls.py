from django.urls import path

from interview.design import views

urlpatterns = [
    path("", views.design_index, name="design-index"),
    path("calculator", views.calculator, name="design-calculator"),
    path("<slug:prompt_id>/", views.practice, name="design-practice"),
    path("<slug:prompt_id>/new", views.practice_new, name="design-practice-new"),
    path("<slug:prompt_id>/follow-ups", views.follow_ups, name="design-follow-ups"),
    path(
        "<slug:prompt_id>/follow-ups/<slug:follow_up_id>",
        views.follow_up_answer,
        name="design-follow-up-answer",
    ),
]
