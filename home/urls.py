from django.urls import path

from home import views

app_name = "home"

urlpatterns = [
    path("kpis/<str:key>/", views.KpiView.as_view(), name="kpi"),
]
