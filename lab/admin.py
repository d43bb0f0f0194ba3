from django.contrib import admin

from lab.models import LabRun


@admin.register(LabRun)
class LabRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "user", "state", "created_at", "worker_hostname")
    list_filter = ("state",)
    readonly_fields = ("results",)
