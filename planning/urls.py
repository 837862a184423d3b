from django.urls import path

from planning import views

app_name = "planning"

urlpatterns = [
    path("cycles/", views.CycleListView.as_view(), name="cycles"),
    path("cycles/<int:pk>/", views.CycleDetailView.as_view(), name="cycle"),
    path(
        "cycles/<int:pk>/phase/<str:phase>/",
        views.PhaseConfirmView.as_view(),
        name="phase",
    ),
    path(
        "cycles/<int:pk>/<slug:kind>/new/",
        views.PlanPartEditView.as_view(),
        name="part_add",
    ),
    path(
        "cycles/<int:pk>/<slug:kind>/<int:part_id>/",
        views.PlanPartEditView.as_view(),
        name="part_change",
    ),
    path(
        "cycles/<int:pk>/<slug:kind>/<int:part_id>/remove/",
        views.PlanPartRemoveView.as_view(),
        name="part_remove",
    ),
]
