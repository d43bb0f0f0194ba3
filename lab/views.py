"""Engine-lab pages: choose settings, run the engine on a worker, watch what it did."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from lab.forms import LabForm
from lab.models import LabRun
from lab.selectors import lab_queue_served, labrun_summary, labruns_of
from lab.services import (
    LAB_QUEUE,
    UNSERVED_WAIT_S,
    LabQueueUnserved,
    LabRunRefused,
    labrun_create,
    labrun_fail_if_unserved,
    no_worker_message,
)


@login_required
@require_http_methods(["GET", "POST"])
def lab_index(request: HttpRequest) -> HttpResponse:
    # A link may preset fields (the scheduler problem links here with ?policy=priority).
    preset = {name: value for name, value in request.GET.items() if name in LabForm.base_fields}
    form = LabForm(request.POST or None, initial=preset)
    if request.method == "POST" and form.is_valid():
        try:
            run = labrun_create(user=request.user, settings=form.cleaned_data["settings"])
        except LabQueueUnserved:
            pass  # the page says so, whenever no worker serves the queue
        except LabRunRefused as error:
            messages.error(request, str(error))
        else:
            return redirect("lab-run", run_id=run.pk)
    return render(
        request,
        "lab/index.html",
        {
            "form": form,
            "runs": labruns_of(request.user),
            "no_worker": "" if lab_queue_served() else no_worker_message(),
        },
        status=400 if form.errors else 200,
    )


def _run_or_404(request: HttpRequest, run_id: int) -> LabRun:
    run = LabRun.objects.filter(pk=run_id, user=request.user).first()
    if run is None:
        raise Http404("no such experiment")
    return run


@login_required
@require_GET
def lab_run(request: HttpRequest, run_id: int) -> HttpResponse:
    run = labrun_fail_if_unserved(_run_or_404(request, run_id))
    template = "lab/_run.html" if request.headers.get("HX-Request") else "lab/run.html"
    context = {
        "run": run,
        "summary": labrun_summary(run),
        "served": run.state != LabRun.State.QUEUED or lab_queue_served(),
        "queue": LAB_QUEUE,
        "wait_s": UNSERVED_WAIT_S,
    }
    return render(request, template, context)
