from rest_framework.routers import DefaultRouter

from goals.api import views
from goals.api.figures import FigureViewSet

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("goals", views.GoalViewSet, basename="goal")
router.register("shared-goals", views.SharedGoalViewSet, basename="shared-goal")
router.register("figures", FigureViewSet, basename="figure")
router.register("rollup-runs", views.RollupRunViewSet, basename="rollup-run")

urlpatterns = router.urls
