from django.urls import path

from conflicts import views

app_name = "conflicts"

urlpatterns = [
    path("conflicts/", views.ConflictReportView.as_view(), name="report"),
    path(
        "conflicts/register/",
        views.ConflictRegisterView.as_view(),
        name="register",
    ),
    path("conflicts.csv", views.ConflictCSVView.as_view(), name="csv"),
    path("conflicts/<int:pk>/", views.ConflictDetailView.as_view(), name="detail"),
]
