from django.urls import path

from planning import views

app_name = "planning"

urlpatterns = [
    path("cycles/", views.CycleListView.as_view(), name="cycles"),
    path("cycles/<int:pk>/", views.CycleDetailView.as_view(), name="cycle"),
]
