from rest_framework.routers import DefaultRouter

from conflicts.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("conflicts", views.ConflictViewSet, basename="conflict")
router.register("detection-runs", views.DetectionRunViewSet, basename="detection-run")

urlpatterns = router.urls
