from rest_framework.routers import DefaultRouter

from planning.api import views

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("cycles", views.PlanningCycleViewSet, basename="cycle")

urlpatterns = router.urls
